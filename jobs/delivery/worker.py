"""`worker --run RUN_ID` (SPEC §9): an extra sender for a frozen run on a server ledger.

A worker takes no run lock: the coordinator holds it. It joins the run's current pass as a
claim owner with a lease, claims batches with `FOR UPDATE SKIP LOCKED` beside the coordinator
and the other workers, and leaves when nothing is left to claim. If it dies, its claims come
back to the queue after the lease; if it cannot renew its lease (its database session is gone),
it stops sending by itself (exit 4).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from jobs.config.settings import SmtpSettings
from jobs.delivery.coordinator import send_as_owner
from jobs.delivery.sender import PassReport
from jobs.errors import InputError, NotFound
from jobs.ledger import (
    DeliveryStatus,
    RunRecord,
    check_ledger,
    get_run,
    stats,
)
from jobs.ledger.codec import utc_now
from jobs.messages.compose import Composer
from jobs.smtp.pool import check_relay_settings

__all__ = ["WorkerOutcome", "run_worker", "worker_id"]


@dataclass(frozen=True)
class WorkerOutcome:
    run: RunRecord
    worker_id: str
    pass_report: PassReport

    @property
    def exit_code(self) -> int:
        return 0  # §9: a worker exits 0 when nothing is left to claim


def worker_id() -> str:
    """`worker host H pid N since T`: unique per process, readable in `status`."""
    since = utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"worker host {socket.gethostname()} pid {os.getpid()} since {since}"


def run_worker(
    ledger: sa.Engine,
    run_id: str,
    composer_for: Callable[[RunRecord], Composer],
    smtp: SmtpSettings,
    *,
    progress: bool = False,
) -> WorkerOutcome:
    """Send deliveries of the frozen run `run_id` until nothing is left to claim."""
    if ledger.dialect.name == "sqlite":
        raise InputError(
            "worker needs a PostgreSQL or MariaDB ledger: SQLite serves one process on one"
            " machine, so use `run` alone"
        )
    check_ledger(ledger)
    with ledger.connect() as conn:
        run = get_run(conn, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r} in the ledger: `run` freezes it first")
    composer = composer_for(run)
    composer.check()
    check_relay_settings(smtp)  # exit 2 before the worker joins the run
    me = worker_id()
    with ledger.connect() as conn:
        before = stats(conn, run)
    report = send_as_owner(
        ledger,
        run,
        run.pass_no,
        composer,
        smtp,
        worker_id=me,
        todo=before[DeliveryStatus.PENDING],
        progress=progress,
        coordinator=None,
    )
    return WorkerOutcome(run=run, worker_id=me, pass_report=report)
