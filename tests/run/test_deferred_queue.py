"""Retries never hold a connection idle (issue 8 item 1, SPEC §9).

A greylisting relay answers 451 to the first RCPT of an address. The delivery goes back to the
queue with a not-before time chosen by tenacity's wait strategy, and the connection moves on to
the next delivery at once: with one connection, the very next RCPT the server sees is another
address, and ordinary messages are accepted while the greylisted ones wait. Attempts are those
of tenacity's stop strategy: a delivery greylisted for good spends them and is `deferred`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from jobs.delivery.sender import SendPass
from jobs.ledger import DeliveryStatus, begin_pass, get_run
from jobs.smtp.pool import SmtpPool
from jobs.source.engine import make_engine
from tests.run.conftest import (
    RUN_ID,
    ScriptedHandler,
    Site,
    closed_port,
    numbered_addresses,
    received_per_address,
    write_people,
)
from tests.smtpd import SmtpServer

GREYLISTED = ("grey1@example.jp", "grey2@example.jp")
ORDINARY = numbered_addresses(30)
GREYLIST = "451 4.7.1 greylisted, try again later"
# long enough that a sleeping connection would stall every ordinary message behind it
BACKOFF = {"backoff_initial_seconds": "0.3", "backoff_max_seconds": "0.6"}


def test_greylisted_deliveries_wait_without_holding_a_connection(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    handler = ScriptedHandler(rcpt={address: [GREYLIST] for address in GREYLISTED})
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (*GREYLISTED, *ORDINARY)))

    outcome = site.run(server, connections=1, max_attempts=3, **BACKOFF)

    assert outcome.exit_code == 0
    assert outcome.pass_report.waited == len(GREYLISTED)
    assert set(site.statuses().values()) == {DeliveryStatus.SENT}
    rows = site.deliveries()
    assert {rows[a].attempts for a in GREYLISTED} == {2}
    assert {rows[a].attempts for a in ORDINARY} == {1}
    assert set(received_per_address(handler.messages)) == {*GREYLISTED, *ORDINARY}
    for address in GREYLISTED:
        first, second = (i for i, rcpt in enumerate(handler.rcpts) if rcpt == address)
        # the one connection moved on at once instead of sleeping on the greylisted address
        assert handler.rcpts[first + 1] != address
        between = set(handler.rcpts[first + 1 : second]) & set(ORDINARY)
        assert between, f"no ordinary message went out while {address} waited"


def test_a_delivery_greylisted_for_good_spends_its_attempts_and_is_deferred(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    stuck = GREYLISTED[0]
    handler = ScriptedHandler(rcpt={stuck: GREYLIST})  # every time
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (stuck, *ORDINARY[:5])))

    outcome = site.run(server, connections=2, max_attempts=3)

    assert outcome.exit_code == 3  # §8: deferred deliveries are left for the next run
    assert handler.rcpts.count(stuck) == 3  # tenacity's stop_after_attempt(3)
    row = site.deliveries()[stuck]
    assert (row.status, row.attempts, row.last_smtp_code) == (DeliveryStatus.DEFERRED, 3, 451)
    assert outcome.pass_report.waited == 2
    assert outcome.pass_report.sent == 5


def test_the_pass_state_is_readable_and_empty_at_the_end(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    """Issue 6: the sending pass is an object whose parts keep their state in plain fields."""
    handler = ScriptedHandler(rcpt={address: [GREYLIST] for address in GREYLISTED})
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (*GREYLISTED, *ORDINARY[:10])))
    # freeze the run without sending: the relay is down
    assert site.run(server, port=closed_port(), max_attempts=1).exit_code == 3
    settings = site.settings(server, connections=2, **BACKOFF)
    _, composer = site.composer(settings)
    ledger = make_engine(site.effective_ledger_url)
    try:
        with ledger.connect() as conn:
            run = get_run(conn, RUN_ID)
        assert run is not None
        info = begin_pass(ledger, run)

        async def send() -> SendPass:
            async with SmtpPool(settings.smtp, None) as pool:
                sending = SendPass(
                    ledger, run, info.pass_no, composer, pool, settings.smtp, worker_id="t"
                )
                await sending.run()
                return sending

        sending = asyncio.run(send())
    finally:
        ledger.dispose()

    assert (sending.report.sent, sending.report.waited) == (12, 2)
    assert sending.committed == 12 + 2  # each result and each wait, one ledger write each
    assert sending.held == {} and sending.in_flight == {} and sending.confirmed == []
    assert sending.waiting == {} and sending.composed == {} and sending.parked == []
    assert sending.session_failures == 0 and not sending.report.relay_down
