"""kill -9 in the middle of sending, then resume at once (SPEC §7 "a crash loses nothing").

`swmail run` sends a few hundred messages through a deliberately slow server (every DATA reply
50 ms late, four connections) and is killed with SIGKILL while messages are in flight. A second
`run` must start at once (the lock died with the process), finish with exit 0, deliver to every
address, and send twice only what the ledger had not confirmed at the kill.

The bound on duplicates: a message is sent twice only if its body reached the server and its
result was not committed, i.e. it was in flight (at most one per connection) or confirmed and
still waiting for the committer. The committer starts a commit every COMMIT_INTERVAL (50 ms), so
a result waits at most that long plus two commit durations; with every DATA reply 50 ms late,
each connection confirms at most two messages in such a window. Hence at most
3 × connections duplicates — and, exactly, only addresses the ledger still had as `sending`.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.ledger import DeliveryStatus
from tests.run.conftest import (
    AS_OF,
    CAMPAIGN,
    RUN_ID,
    ScriptedHandler,
    Site,
    all_disconnected,
    numbered_addresses,
    read_csv,
    received_per_address,
    wait_until,
    write_people,
)
from tests.smtpd import SmtpServer, Stall

DELIVERIES = 300
CONNECTIONS = 4
KILL_AFTER = 60  # messages received by the server before the kill
DATA_DELAY = 0.05  # seconds the server takes to confirm each message


@pytest.mark.slow
@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_kill_9_then_resume_loses_nothing_and_resends_only_the_unconfirmed(
    database: str,
    request: pytest.FixtureRequest,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    tmp_path: Path,
) -> None:
    url = str(request.getfixturevalue("sqlite_url" if database == "sqlite" else "pg_url"))
    site = make_site(url)
    site.prepare(write_people(tmp_path / "data", numbered_addresses(DELIVERIES)))
    dry = tmp_path / "dry"
    shown = site.cli("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF.isoformat(),
                     "--out", str(dry))  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    dry_ids = {
        row["delivery_email"]: row["message_id"]
        for row in read_csv(dry / "audit.csv")
        if row["decision"] == "send"
    }
    assert len(dry_ids) == DELIVERIES

    handler = ScriptedHandler(data=Stall(DATA_DELAY))
    server = smtp_server(handler)
    victim = site.spawn(*site.run_args(), server=server, connections=CONNECTIONS)
    wait_until(lambda: len(handler.bodies) >= KILL_AFTER, 60, f"{KILL_AFTER} messages")
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(10) == -signal.SIGKILL
    wait_until(lambda: all_disconnected(server), 10, "the server to see the connections close")

    received_at_kill = received_per_address(handler.bodies)
    at_kill = site.statuses()
    unconfirmed = {a for a, s in at_kill.items() if s is DeliveryStatus.SENDING}
    committed = {a for a, s in at_kill.items() if s is DeliveryStatus.SENT}
    assert committed, "the kill came before anything was committed: nothing was tested"
    assert len(committed) + len(unconfirmed) < DELIVERIES, "the run had finished before the kill"

    handler.data = ()  # the server is fast again
    resumed = site.cli(*site.run_args(), server=server, connections=CONNECTIONS)

    # the lock died with the process: the resume ran at once, and finished the run
    assert resumed.returncode == 0, resumed.stderr
    assert f"resent after a crash: {len(unconfirmed)} deliveries" in resumed.stdout
    final = site.statuses()
    assert set(final.values()) == {DeliveryStatus.SENT}
    assert site.stats().unconfirmed == len(unconfirmed)
    # every delivery left `sending` was resent with an unknown outcome: each is a possible
    # duplicate, counted in the ledger, and the count covers every copy that arrived twice
    shown = site.cli("status", "--run", RUN_ID, "--json")
    assert shown.returncode == 0, shown.stderr
    [status] = json.loads(shown.stdout)
    assert status["possible_duplicates"] == len(unconfirmed)
    assert f"possible duplicates: {len(unconfirmed)}" in resumed.stdout
    text = site.cli("status", "--run", RUN_ID)
    assert f"possible duplicates: {len(unconfirmed)}" in text.stdout

    received = received_per_address(handler.bodies)
    assert set(received) == set(dry_ids)  # every delivery reached the server
    duplicates = {a for a, n in received.items() if n > 1}
    assert max(received.values()) <= 2
    # only deliveries the ledger had not confirmed were sent again, never a committed one
    assert duplicates <= unconfirmed
    assert duplicates == {a for a in unconfirmed if received_at_kill[a]}
    assert all(received[a] == 1 for a in committed)
    assert len(duplicates) <= 3 * CONNECTIONS
    assert len(duplicates) <= status["possible_duplicates"]
    # every copy, first or second, carries the Message-ID the dry run showed
    for body in handler.bodies:
        assert body.message_id == dry_ids[body.rcpt_tos[0]]

    print(
        f"\n[{database}] kill -9 after {sum(received_at_kill.values())} bodies: "
        f"{len(committed)} committed sent, {len(unconfirmed)} left `sending`, "
        f"{len(duplicates)} sent twice (bound {3 * CONNECTIONS})"
    )
