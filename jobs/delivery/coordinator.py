"""The `run` coordinator (SPEC §7): lock, freeze the resolution once, send a pass, report.

The order matters for "impossible to double-send":
1. templates, the From address, the SMTP password variable and CA file are checked before
   anything else (exit 2 changes nothing: no run is frozen);
2. the run lock is taken before the ledger is read, so two coordinators never both resolve or
   both reset in-flight deliveries; it dies with the process (kill -9 leaves nothing to expire);
3. the first run freezes audit rows, deliveries and Message-IDs in one transaction; later runs
   read only the ledger, so a resumed run sends exactly the frozen set, never a re-resolution;
4. a new pass puts deliveries left `sending` by a dead process back in the queue (same
   Message-ID) and counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.config.settings import SmtpSettings
from jobs.delivery.approval import ApprovalGate
from jobs.delivery.sender import PassReport, SendPass
from jobs.ledger import (
    DeliveryStatus,
    RunRecord,
    RunStats,
    WorkerRole,
    acquire_run_lock,
    begin_pass,
    check_ledger,
    create_run,
    finish_run,
    get_run,
    holder_description,
    ledger_suppressions,
    make_run_id,
    register_worker,
    reserve_pace,
    stats,
    stop_worker,
)
from jobs.ledger.lock import RunLock
from jobs.logs import run_context
from jobs.messages.compose import Composer
from jobs.resolution.pipeline import Resolved, Summary, stream_resolution
from jobs.smtp.pool import SmtpPool, check_relay_settings, relay_password
from jobs.smtp.rate import RateLimiter, SharedRateLimiter
from resolver.model import Delivery, Warning

__all__ = ["RunOutcome", "freeze_resolution", "run_campaign", "send_as_owner"]

EXIT_DONE = 0
EXIT_DEFERRED = 3

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    run: RunRecord
    created: bool  # this call resolved and froze the run
    resolution: Summary | None
    reset_in_flight: int  # found `sending` after a crash: resent with their Message-ID
    pass_report: PassReport
    stats: RunStats
    seconds: float

    @property
    def exit_code(self) -> int:
        open_left = sum(
            self.stats.counts.get(s, 0)
            for s in (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
        )
        return EXIT_DEFERRED if open_left else EXIT_DONE


def _sqlite_path(engine: sa.Engine) -> Path | None:
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return Path(engine.url.database)


def freeze_resolution(
    source: sa.Engine,
    ledger: sa.Engine,
    campaign: Campaign,
    composer: Composer,
    *,
    as_of: date,
    already_sent: frozenset[str] = frozenset(),
    progress: bool = False,
) -> tuple[RunRecord, Summary]:
    """The first `run`'s resolution, frozen in the ledger in one transaction (§7).

    The audit rows stream from the source into the freezing transaction, the deliveries from
    the resolution's temporary file after them: a large run never holds either in memory.
    The caller holds the run lock.
    """
    resolved = Resolved()
    rows = stream_resolution(
        source,
        campaign,
        as_of,
        resolved,
        extra_suppressed=ledger_suppressions(ledger),
        already_sent=already_sent,
        progress=progress,
    )

    def after_rows() -> Iterator[Delivery]:
        yield from resolved.deliveries  # complete once `rows` is exhausted

    def warnings_after_rows() -> Iterator[Warning]:
        yield from resolved.warnings

    with resolved:  # the deliveries' temporary file is removed once they are frozen
        run = create_run(
            ledger,
            campaign_id=campaign.id,
            run_key=composer.run_key,
            as_of=as_of,
            dedupe=campaign.policy.dedupe,
            template=campaign.template,
            audit_rows=rows,
            deliveries=after_rows(),
            warnings=warnings_after_rows(),
            message_id_for=composer.message_id,
        )
    return run, resolved.summary


def run_campaign(
    source: sa.Engine,
    ledger: sa.Engine,
    campaign: Campaign,
    composer: Composer,
    smtp: SmtpSettings,
    *,
    as_of: date,
    already_sent: frozenset[str] = frozenset(),
    gate: ApprovalGate | None = None,
    progress: bool = False,
) -> RunOutcome:
    """Resolve (first time) and send one run; resumable after any crash.

    `already_sent`: delivery keys earlier runs of the campaign sent (§4 ALREADY_SENT), used
    when the run is first frozen. `gate`: the §9 approval check, made under the run lock before
    anything is frozen or sent.
    """
    started = time.perf_counter()
    composer.check()
    check_relay_settings(smtp)
    check_ledger(ledger)
    run_id = make_run_id(campaign.id, composer.run_key)
    holder = holder_description()
    with (
        run_context(run_id),
        acquire_run_lock(ledger, run_id, sqlite_path=_sqlite_path(ledger)) as lock,
    ):
        with ledger.connect() as conn:
            run = get_run(conn, run_id)
        created = run is None
        if gate is not None:
            gate.check(frozen=not created)
        log.info("run started (%s)", "resolving and freezing" if created else "resuming")
        summary: Summary | None = None
        if run is None:
            run, summary = freeze_resolution(
                source,
                ledger,
                campaign,
                composer,
                as_of=as_of,
                already_sent=already_sent,
                progress=progress,
            )
        elif run.as_of != composer.as_of:
            # the frozen run renders with its own as-of date, whatever was passed now
            composer = Composer(
                composer.campaign_id,
                composer.run_key,
                run.as_of,
                composer.templates,
                composer.message,
            )
        # §9: a live worker's claims stay its own; a dead sender's come back now
        info = begin_pass(ledger, run, coordinator=holder, lease_seconds=smtp.claim_lease_seconds)
        with ledger.connect() as conn:
            before = stats(conn, run)
        todo = before[DeliveryStatus.PENDING] + before[DeliveryStatus.SENDING]
        report = send_as_owner(
            ledger,
            run,
            info.pass_no,
            composer,
            smtp,
            worker_id=holder,
            todo=todo,
            progress=progress,
            coordinator=lock,
        )
        finish_run(ledger, run)
        with ledger.connect() as conn:
            after = stats(conn, run)
            refreshed = get_run(conn, run_id)
        log.info(
            "pass finished: sent %d, deferred %d, failed %d; %d left open",
            report.sent,
            report.deferred,
            report.failed,
            after.open,
        )
    return RunOutcome(
        run=refreshed or run,
        created=created,
        resolution=summary,
        reset_in_flight=info.reset,
        pass_report=report,
        stats=after,
        seconds=time.perf_counter() - started,
    )


def _limiter(ledger: sa.Engine, run: RunRecord, smtp: SmtpSettings) -> RateLimiter:
    """The pool's pace: run-wide through the ledger where workers can share the run (§9)."""
    if smtp.rate_per_second <= 0 or ledger.dialect.name == "sqlite":
        return RateLimiter(smtp.rate_per_second)  # SQLite: one sending process per run
    interval = 1.0 / smtp.rate_per_second

    async def reserve(slots: int) -> float:
        return await asyncio.to_thread(reserve_pace, ledger, run, slots, interval)

    return SharedRateLimiter(smtp.rate_per_second, reserve)


def send_as_owner(
    ledger: sa.Engine,
    run: RunRecord,
    pass_no: int,
    composer: Composer,
    smtp: SmtpSettings,
    *,
    worker_id: str,
    todo: int,
    progress: bool,
    coordinator: RunLock | None,
) -> PassReport:
    """One sender's share of a pass, as a claim owner with a lease (§9).

    The coordinator (holding `coordinator`, its run lock) waits for the other senders' claims
    too, each coming back to it if its owner dies; a worker leaves when nothing is left to
    claim. The owner's row stays for `status`, marked stopped.
    """
    role = WorkerRole.WORKER if coordinator is None else WorkerRole.COORDINATOR

    async def send() -> PassReport:
        if todo == 0:
            return PassReport()
        pool = SmtpPool(smtp, relay_password(smtp), limiter=_limiter(ledger, run, smtp))
        async with pool:
            return await SendPass(
                ledger,
                run,
                pass_no,
                composer,
                pool,
                smtp,
                worker_id=worker_id,
                total=todo,
                progress=progress,
                wait_for_others=coordinator is not None,
                lease_seconds=smtp.claim_lease_seconds,
                lock=coordinator,
            ).run()

    register_worker(ledger, run, worker_id, role)
    try:
        return asyncio.run(send())
    finally:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            stop_worker(ledger, run, worker_id)
