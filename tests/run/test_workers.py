"""`worker --run RUN_ID` beside the `run` coordinator on a server ledger (SPEC §9, issue 8).

Real processes, a real server database and a real, deliberately slow SMTP server:
- a coordinator and two workers drain one run; one worker is killed with kill -9. Every
  delivery is sent; only the killed worker's claims can arrive twice; its claims come back
  after the lease and are sent by the others; the live worker is never disturbed;
- `smtp.rate_per_second` is the run's total: two processes together never exceed it;
- a coordinator that loses its run lock stops sending (exit 4), and so does a worker that
  cannot renew its lease in time;
- on SQLite, `worker` exits 2 with one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session

from jobs.ledger import DeliveryStatus
from jobs.ledger.models import DeliveryRow, RunLockRow
from jobs.source.engine import make_engine
from tests.run.conftest import (
    RUN_ID,
    ScriptedHandler,
    Site,
    closed_port,
    numbered_addresses,
    received_per_address,
    wait_until,
    write_people,
)
from tests.smtpd import SmtpServer, Stall

SERVERS = [
    pytest.param("pg_url", marks=pytest.mark.postgres, id="postgresql"),
    pytest.param("mariadb_url", marks=pytest.mark.mariadb, id="mariadb"),
]
LEASE = "3"  # seconds: short, so the test waits little for a dead worker's claims
STOPS = 120.0


def _worker_args() -> tuple[str, ...]:
    return ("worker", "--run", RUN_ID)


def _rows(site: Site) -> list[Any]:
    """(email, status, unconfirmed, claimed_by) of every delivery."""
    engine = make_engine(site.effective_ledger_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(
                        DeliveryRow.email,
                        DeliveryRow.status,
                        DeliveryRow.unconfirmed,
                        DeliveryRow.claimed_by,
                    )
                ).all()
            )
    finally:
        engine.dispose()


def _owned_by(pid: int, owner: str | None) -> bool:
    return owner is not None and f" pid {pid} " in owner


def _sent_by(site: Site, pid: int) -> int:
    return sum(
        1 for r in _rows(site) if r.status is DeliveryStatus.SENT and _owned_by(pid, r.claimed_by)
    )


def _status(site: Site) -> dict[str, object]:
    shown = site.cli("status", "--run", RUN_ID, "--json")
    assert shown.returncode == 0, shown.stderr
    [status] = json.loads(shown.stdout)
    assert isinstance(status, dict)
    return status


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=STOPS)
    return process.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("database", SERVERS)
def test_coordinator_and_two_workers_one_killed_send_everything_once(
    database: str,
    request: pytest.FixtureRequest,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    tmp_path: Path,
) -> None:
    addresses = numbered_addresses(600)
    site = make_site(str(request.getfixturevalue(database)))
    site.prepare(write_people(tmp_path / "data", addresses))
    handler = ScriptedHandler(data=Stall(0.05))
    server = smtp_server(handler)
    smtp = {"server": server, "connections": 2, "claim_lease_seconds": LEASE}

    coordinator = site.spawn(*site.run_args(), **smtp)
    wait_until(lambda: len(handler.bodies) >= 5, 60, "the coordinator to start sending")
    live = site.spawn(*_worker_args(), **smtp)
    victim = site.spawn(*_worker_args(), **smtp)
    wait_until(lambda: _sent_by(site, victim.pid) >= 5, 60, "the doomed worker to send")
    wait_until(lambda: _sent_by(site, live.pid) >= 5, 60, "the live worker to send")
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(10) == -signal.SIGKILL
    at_kill = _rows(site)
    victim_claims = {
        r.email
        for r in at_kill
        if r.status is DeliveryStatus.SENDING and _owned_by(victim.pid, r.claimed_by)
    }
    live_code, live_out, live_err = _finish(live)
    code, _, err = _finish(coordinator)

    assert code == 0, err
    assert live_code == 0, live_err
    assert f"on {RUN_ID}: sent" in live_out
    final = _rows(site)
    assert {r.status for r in final} == {DeliveryStatus.SENT}
    received = received_per_address(handler.bodies)
    assert set(received) == set(addresses)  # every delivery reached the server
    assert max(received.values()) <= 2
    # only the killed worker's claims could arrive twice; each came back after its lease
    duplicates = {a for a, n in received.items() if n > 1}
    assert duplicates <= victim_claims
    unconfirmed = {r.email for r in final if r.unconfirmed}
    assert unconfirmed == victim_claims
    # the live worker was never disturbed: nothing it claimed was taken back
    assert not any(_owned_by(live.pid, r.claimed_by) for r in at_kill if r.email in unconfirmed)
    status = _status(site)
    workers = status["workers"]
    assert isinstance(workers, list)
    assert len(workers) == 3
    assert sum(w["sent"] for w in workers) == len(addresses)
    assert all(w["sent"] > 0 for w in workers)
    assert {"id", "sent", "deferred", "failed", "last_seen"} == set(workers[0])
    assert status["possible_duplicates"] >= len(duplicates)
    print(
        f"\n[{database}] killed worker held {len(victim_claims)} claims; "
        f"{len(duplicates)} sent twice; senders: "
        + ", ".join(f"{w['id'].split(' since')[0]} sent {w['sent']}" for w in workers)
    )


@dataclass
class TimedHandler(ScriptedHandler):
    """Records when each message body arrived (monotonic seconds)."""

    arrivals: list[float] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.arrivals.append(time.monotonic())
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.slow
@pytest.mark.parametrize("database", SERVERS)
def test_the_rate_limit_is_the_runs_total_across_processes(
    database: str,
    request: pytest.FixtureRequest,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    tmp_path: Path,
) -> None:
    rate = 20
    addresses = numbered_addresses(240)  # 12 s at the rate: the worker joins well before
    site = make_site(str(request.getfixturevalue(database)))
    site.prepare(write_people(tmp_path / "data", addresses))
    handler = TimedHandler()
    server = smtp_server(handler)
    smtp = {"server": server, "connections": 2, "rate_per_second": rate}

    coordinator = site.spawn(*site.run_args(), **smtp)
    wait_until(lambda: len(handler.bodies) >= 5, 60, "the coordinator to start sending")
    helper = site.spawn(*_worker_args(), **smtp)
    helper_code, _, helper_err = _finish(helper)
    code, _, err = _finish(coordinator)

    assert (code, helper_code) == (0, 0), err + helper_err
    assert set(received_per_address(handler.messages)) == set(addresses)
    workers = _status(site)["workers"]
    assert isinstance(workers, list)
    assert [w["sent"] > 0 for w in workers] == [True, True], "the two never sent together"
    # never more than the rate over any 3-second window, whichever process sent. The arrivals
    # are the server's clock: on a loaded machine its event loop can hold messages sent in their
    # slots and take them in a bunch, so the bound allows a quarter second of scheduling delay
    # (5 messages) on top of one slot for each end of the window. Uncoordinated processes would
    # put about 2 × the rate (≈ 120) into the window, which this still fails.
    window = 3.0
    scheduling_delay = 0.25
    arrivals = sorted(handler.arrivals)
    busiest = max(
        sum(1 for t in arrivals[i:] if t < start + window) for i, start in enumerate(arrivals)
    )
    bound = rate * (window + scheduling_delay) + 2
    assert busiest <= bound, f"{busiest} messages arrived within {window}s (bound {bound})"


@pytest.mark.slow
def test_a_coordinator_that_loses_its_run_lock_stops_sending(
    pg_url: str,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    tmp_path: Path,
) -> None:
    site = make_site(pg_url)
    site.prepare(write_people(tmp_path / "data", numbered_addresses(400)))
    handler = ScriptedHandler(data=Stall(0.05))
    server = smtp_server(handler)
    running = site.spawn(*site.run_args(), server=server, connections=2, claim_lease_seconds="1.5")
    wait_until(lambda: len(handler.bodies) >= 10, 60, "10 messages")

    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            session = conn.execute(sa.select(RunLockRow.session_id)).scalar_one()
            conn.execute(sa.select(sa.func.pg_terminate_backend(session)))
    finally:
        engine.dispose()
    code, _, err = _finish(running)

    assert code == 4, err
    assert "lost the run lock" in err
    rows = _rows(site)
    assert len([r for r in rows if r.status is DeliveryStatus.SENDING]) <= 2  # in flight only
    assert len(received_per_address(handler.bodies)) < 400  # it stopped before the end


@pytest.mark.slow
def test_a_worker_that_cannot_renew_its_lease_stops_sending(
    pg_url: str,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    tmp_path: Path,
) -> None:
    """Cut off from the ledger for longer than half its lease, a worker stops on its own.

    The table of leases is locked for longer than the worker may wait for its heartbeat: as
    with a database out of reach, the others may take its claims soon, so it must not go on.
    """
    addresses = numbered_addresses(400)
    site = make_site(pg_url)
    site.prepare(write_people(tmp_path / "data", addresses))
    # freeze the run without sending: the relay is down
    frozen = site.cli(*site.run_args(), host="127.0.0.1", port=closed_port(), max_attempts=1)
    assert frozen.returncode == 3, frozen.stderr
    handler = ScriptedHandler(data=Stall(0.05))
    server = smtp_server(handler)
    worker = site.spawn(*_worker_args(), server=server, connections=2, claim_lease_seconds=LEASE)
    wait_until(lambda: len(handler.bodies) >= 10, 60, "10 messages")

    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("LOCK TABLE swmail_workers IN ACCESS EXCLUSIVE MODE"))
            # longer than a heartbeat interval (1 s) plus the wait it allows (1.5 s); the
            # worker stops sending then, and exits once it can record what it has
            time.sleep(5)
    finally:
        engine.dispose()
    code, _, err = _finish(worker)

    assert code == 4, err
    assert "could not renew its lease" in err
    assert len(received_per_address(handler.bodies)) < len(addresses)


def test_worker_on_sqlite_exits_2_with_one_line(
    make_site: Callable[..., Site], sqlite_url: str, tmp_path: Path
) -> None:
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", numbered_addresses(3)))
    shown = site.cli(*_worker_args())
    assert shown.returncode == 2
    assert shown.stderr.count("\n") == 1
    assert "worker needs a PostgreSQL or MariaDB ledger" in shown.stderr


@pytest.mark.postgres
def test_a_worker_says_first_that_messages_are_redirected(
    pg_url: str,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    tmp_path: Path,
) -> None:
    """§10: `run`, `nightly` and `worker` print the same REDIRECTED line first (one home)."""
    site = make_site(pg_url)
    site.prepare(write_people(tmp_path / "data", numbered_addresses(2)))
    site.extra_env["SWMAIL_MESSAGE_REDIRECT_ALL_TO"] = "tester@example.jp"
    server = smtp_server()
    run = site.cli(*site.run_args(), server=server)
    assert run.returncode == 0, run.stderr
    worker = site.cli(*_worker_args(), server=server)  # nothing left to claim: exits 0
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.splitlines()[0] == run.stdout.splitlines()[0]
    assert run.stdout.startswith("REDIRECTED: every message goes to tester@example.jp")
