"""A run that stops early stops promptly and leaves an honest ledger (SPEC §7, §8).

Three ways to stop besides a kill -9: the relay refuses the whole session (a configuration
error, exit 2), the operator presses Ctrl-C (exit 130) and systemd sends SIGTERM (exit 143).
Either way, what the server confirmed is committed, deliveries claimed but never handed to the
server go back to `pending`, and only the few that were on their way (at most one per
connection) stay `sending`, to be resent (and counted) by the next run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.config.settings import SmtpSettings
from jobs.ledger import DeliveryStatus
from jobs.smtp import SmtpPool
from tests.run.conftest import (
    ScriptedHandler,
    Site,
    all_disconnected,
    closed_port,
    numbered_addresses,
    received_per_address,
    wait_until,
    write_people,
)
from tests.smtpd import SmtpServer, Stall

DELIVERIES = 300
CONNECTIONS = 4
PROMPTLY = 20.0  # seconds; a stuck process fails the test instead of hanging the suite


def _by_status(statuses: dict[str, DeliveryStatus]) -> dict[DeliveryStatus, set[str]]:
    grouped: dict[DeliveryStatus, set[str]] = {s: set() for s in DeliveryStatus}
    for address, status in statuses.items():
        grouped[status].add(address)
    return grouped


def test_a_relay_refusing_the_sender_stops_the_run_with_exit_2(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    handler = ScriptedHandler(mail="550 5.7.1 sender not allowed")
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", numbered_addresses(DELIVERIES)))

    refused = site.cli(*site.run_args(), server=server, connections=CONNECTIONS, timeout=PROMPTLY)

    assert refused.returncode == 2, refused.stderr
    assert "refused the sender info@smileworks.example.jp: 550 5.7.1" in refused.stderr
    states = _by_status(site.statuses())
    assert not states[DeliveryStatus.SENT] and not states[DeliveryStatus.FAILED]
    assert len(states[DeliveryStatus.SENDING]) <= CONNECTIONS  # the rest went back to pending
    assert handler.bodies == []

    handler.mail = ()  # the relay is fixed
    fixed = site.cli(*site.run_args(), server=server, connections=CONNECTIONS)
    assert fixed.returncode == 0, fixed.stderr
    received = received_per_address(handler.bodies)
    assert set(received) == set(numbered_addresses(DELIVERIES))
    assert set(received.values()) == {1}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "exit_code", "said"),
    [
        pytest.param(signal.SIGINT, 130, "Interrupted", id="ctrl-c"),
        pytest.param(signal.SIGTERM, 143, "Terminated", id="sigterm"),  # what systemd sends
    ],
)
def test_ctrl_c_and_sigterm_commit_what_was_confirmed_and_give_back_the_rest(
    signum: int,
    exit_code: int,
    said: str,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    handler = ScriptedHandler(data=Stall(0.05))
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", numbered_addresses(DELIVERIES)))
    running = site.spawn(*site.run_args(), server=server, connections=CONNECTIONS)
    wait_until(lambda: len(handler.bodies) >= 40, 60, "40 messages")

    os.kill(running.pid, signum)
    _, stderr = running.communicate(timeout=PROMPTLY)

    assert running.returncode == exit_code, stderr  # as shells report the signal; 1 is a bug
    assert f"{said}: what the server confirmed is recorded; run again to resume" in stderr
    wait_until(lambda: all_disconnected(server), 10, "the server to see the connections close")
    states = _by_status(site.statuses())
    accepted = set(received_per_address(handler.messages))
    assert states[DeliveryStatus.SENT] <= accepted
    assert accepted - states[DeliveryStatus.SENT] <= states[DeliveryStatus.SENDING]
    assert len(states[DeliveryStatus.SENDING]) <= CONNECTIONS
    open_or_sent = states[DeliveryStatus.SENT] | states[DeliveryStatus.SENDING]
    assert states[DeliveryStatus.PENDING] == set(numbered_addresses(DELIVERIES)) - open_or_sent

    handler.data = ()
    resumed = site.cli(*site.run_args(), server=server, connections=CONNECTIONS)
    assert resumed.returncode == 0, resumed.stderr
    received = received_per_address(handler.bodies)
    assert set(received) == set(numbered_addresses(DELIVERIES))
    assert {a for a, n in received.items() if n > 1} <= states[DeliveryStatus.SENDING]


def test_a_relay_that_is_down_stops_the_pass_instead_of_retrying_every_delivery(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", numbered_addresses(DELIVERIES)))
    dead_port = closed_port()

    down = site.cli(
        *site.run_args(),
        host="127.0.0.1",
        port=dead_port,
        connections=CONNECTIONS,
        max_attempts=2,
        timeout=PROMPTLY,
    )

    assert down.returncode == 3, down.stderr
    assert "stopped this pass" in down.stdout
    states = _by_status(site.statuses())
    # only the deliveries in flight when the relay was seen failing are deferred: the pool's
    # `concurrency` (several per connection, for PIPELINING) plus those taken meanwhile
    in_flight = SmtpPool.from_settings(SmtpSettings(connections=CONNECTIONS)).concurrency
    assert 0 < len(states[DeliveryStatus.DEFERRED]) <= in_flight + CONNECTIONS
    assert not states[DeliveryStatus.SENDING] and not states[DeliveryStatus.SENT]
    assert len(states[DeliveryStatus.PENDING]) >= DELIVERIES - in_flight - CONNECTIONS

    handler = ScriptedHandler()
    server = smtp_server(handler)
    back = site.cli(*site.run_args(), server=server, connections=CONNECTIONS)
    assert back.returncode == 0, back.stderr
    assert set(received_per_address(handler.bodies)) == set(numbered_addresses(DELIVERIES))
