"""Claim owners of a run, their leases, and the run-wide send pace (SPEC §9).

Every sender of a run (the `run` coordinator and each `worker`) is a claim owner with a row in
`swmail_workers` whose `last_seen` it renews while it lives (its heartbeat). A claim whose owner
has been silent for longer than the lease (`smtp.claim_lease_seconds`) goes back to the queue,
and only then: a live owner's claims are never taken. An owner that cannot renew its lease in
time stops sending on its own, so the two never send the same claim at once.

Each function owns one short transaction, like the queue's. Times are the caller's wall clock
(UTC): the senders of one run must keep their clocks in sync (NTP), as any lease needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from jobs.ledger.codec import utc_now
from jobs.ledger.models import DeliveryRow, RunRow, WorkerRole, WorkerRow
from jobs.ledger.values import DeliveryStatus, RunRecord

__all__ = [
    "WorkerStats",
    "heartbeat",
    "list_workers",
    "live_owner",
    "register_worker",
    "reserve_pace",
    "stop_worker",
    "take_back",
    "unconfirmed_back_to_queue",
]


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One claim owner of a run for `status` (SPEC §9): counts are the ledger's, by owner."""

    id: str
    role: WorkerRole
    sent: int
    deferred: int
    failed: int
    last_seen: datetime
    stopped_at: datetime | None


def register_worker(
    engine: sa.Engine,
    run: RunRecord,
    worker_id: str,
    role: WorkerRole,
    *,
    now: datetime | None = None,
) -> None:
    """Record a new claim owner of the run, alive as of `now`."""
    now = utc_now() if now is None else now
    with engine.begin() as conn:
        updated = conn.execute(
            sa.update(WorkerRow)
            .where(WorkerRow.run_pk == run.pk, WorkerRow.worker_id == worker_id)
            .values(role=role, last_seen=now, stopped_at=None)
        ).rowcount
        if not updated:
            conn.execute(
                sa.insert(WorkerRow).values(
                    run_pk=run.pk,
                    worker_id=worker_id,
                    role=role,
                    started_at=now,
                    last_seen=now,
                    stopped_at=None,
                )
            )


def heartbeat(
    engine: sa.Engine, run: RunRecord, worker_id: str, *, now: datetime | None = None
) -> bool:
    """Renew the owner's lease; False when it was declared stopped (its claims may be gone)."""
    now = utc_now() if now is None else now
    with engine.begin() as conn:
        return bool(
            conn.execute(
                sa.update(WorkerRow)
                .where(
                    WorkerRow.run_pk == run.pk,
                    WorkerRow.worker_id == worker_id,
                    WorkerRow.stopped_at.is_(None),
                )
                .values(last_seen=now)
            ).rowcount
        )


def stop_worker(
    engine: sa.Engine, run: RunRecord, worker_id: str, *, now: datetime | None = None
) -> None:
    """The owner leaves: its row stays for `status`, its lease ends."""
    now = utc_now() if now is None else now
    with engine.begin() as conn:
        conn.execute(
            sa.update(WorkerRow)
            .where(WorkerRow.run_pk == run.pk, WorkerRow.worker_id == worker_id)
            .values(stopped_at=now)
        )


def unconfirmed_back_to_queue() -> dict[str, Any]:
    """The values of a `sending` delivery whose sender is gone: queued again, outcome unknown.

    Its message may or may not have reached the server (§7): it is resent with its Message-ID,
    counted as unconfirmed, and as a possible duplicate when its body goes out again.
    """
    return {
        "status": DeliveryStatus.PENDING,
        "unconfirmed": DeliveryRow.unconfirmed + 1,
        "outcome_unknown": True,
        "claimed_by": None,
        "claimed_at": None,
    }


def live_owner(run: RunRecord, cutoff: datetime, *roles: WorkerRole) -> sa.Exists:
    """A row of `claimed_by` that renewed its lease since `cutoff` and has not stopped."""
    return (
        sa.exists()
        .where(
            WorkerRow.run_pk == run.pk,
            WorkerRow.worker_id == DeliveryRow.claimed_by,
            WorkerRow.stopped_at.is_(None),
            WorkerRow.last_seen >= cutoff,
            WorkerRow.role.in_(roles),
        )
        .correlate(DeliveryRow)
    )


def take_back(
    engine: sa.Engine,
    run: RunRecord,
    lease_seconds: float,
    *,
    now: datetime | None = None,
    spare: tuple[WorkerRole, ...] = (WorkerRole.COORDINATOR, WorkerRole.WORKER),
) -> int:
    """Claims whose owner's lease expired go back to the queue; returns how many.

    They were `sending`: their outcome is unknown (§7), so each is resent with its Message-ID
    and counted as unconfirmed and, when its body goes out again, as a possible duplicate.
    `spare` names the roles whose live owners keep their claims (a coordinator starting a pass
    holds the run lock, so any other coordinator row is dead, whatever its lease says).
    """
    now = utc_now() if now is None else now
    cutoff = now - timedelta(seconds=lease_seconds)
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.update(DeliveryRow)
                .where(
                    DeliveryRow.run_pk == run.pk,
                    DeliveryRow.status == DeliveryStatus.SENDING,
                    ~live_owner(run, cutoff, *spare),
                )
                .values(**unconfirmed_back_to_queue())
                .execution_options(synchronize_session=False)
            ).rowcount
        )


def list_workers(conn: sa.Connection, run: RunRecord) -> list[WorkerStats]:
    """The run's claim owners, first started first, with what each finished (by `claimed_by`)."""
    finished = {
        (owner, status): int(n)
        for owner, status, n in conn.execute(
            sa.select(DeliveryRow.claimed_by, DeliveryRow.status, sa.func.count())
            .where(
                DeliveryRow.run_pk == run.pk,
                DeliveryRow.status.in_(
                    (DeliveryStatus.SENT, DeliveryStatus.DEFERRED, DeliveryStatus.FAILED)
                ),
            )
            .group_by(DeliveryRow.claimed_by, DeliveryRow.status)
        )
    }
    rows = conn.execute(
        sa.select(WorkerRow.worker_id, WorkerRow.role, WorkerRow.last_seen, WorkerRow.stopped_at)
        .where(WorkerRow.run_pk == run.pk)
        .order_by(WorkerRow.started_at, WorkerRow.worker_id)
    ).all()
    return [
        WorkerStats(
            id=w.worker_id,
            role=w.role,
            sent=finished.get((w.worker_id, DeliveryStatus.SENT), 0),
            deferred=finished.get((w.worker_id, DeliveryStatus.DEFERRED), 0),
            failed=finished.get((w.worker_id, DeliveryStatus.FAILED), 0),
            last_seen=w.last_seen,
            stopped_at=w.stopped_at,
        )
        for w in rows
    ]


def reserve_pace(
    engine: sa.Engine,
    run: RunRecord,
    slots: int,
    interval: float,
    *,
    now: datetime | None = None,
) -> float:
    """Reserve the run's next `slots` send slots, `interval` seconds apart, for this process.

    Returns the seconds from `now` to the first of them. The run row's lock serializes the
    processes, so the slots of all senders never overlap: `smtp.rate_per_second` is the run's
    total (§9). A slot left unused is lost, never spent later in a burst.
    """
    now = utc_now() if now is None else now
    with engine.begin() as conn:
        current = conn.execute(
            sa.select(RunRow.pace_next).where(RunRow.pk == run.pk).with_for_update()
        ).scalar_one()
        start = now if current is None or current < now else current
        conn.execute(
            sa.update(RunRow)
            .where(RunRow.pk == run.pk)
            .values(pace_next=start + timedelta(seconds=slots * interval))
        )
    return (start - now).total_seconds()
