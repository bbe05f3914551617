"""Claim owners, leases and the run-wide pace (SPEC §9), on each real database.

Times are passed in, so a lease "expires" without waiting for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from jobs.ledger import (
    DeliveryStatus,
    RunRecord,
    WorkerRole,
    begin_pass,
    claim,
    heartbeat,
    list_workers,
    register_worker,
    reserve_pace,
    stop_worker,
    take_back,
)
from jobs.ledger.models import DeliveryRow

T0 = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
LEASE = 60.0


def _owners(ledger: sa.Engine, run: RunRecord) -> dict[int, tuple[DeliveryStatus, str | None]]:
    with ledger.connect() as conn:
        rows = conn.execute(
            sa.select(DeliveryRow.seq, DeliveryRow.status, DeliveryRow.claimed_by).where(
                DeliveryRow.run_pk == run.pk
            )
        ).all()
    return {seq: (status, owner) for seq, status, owner in rows}


def _unknown(ledger: sa.Engine, run: RunRecord) -> set[int]:
    with ledger.connect() as conn:
        return set(
            conn.execute(
                sa.select(DeliveryRow.seq).where(
                    DeliveryRow.run_pk == run.pk, DeliveryRow.outcome_unknown.is_(True)
                )
            ).scalars()
        )


def test_a_resuming_coordinator_leaves_a_live_workers_claims(
    ledger: sa.Engine, run: RunRecord
) -> None:
    info = begin_pass(ledger, run)
    register_worker(ledger, run, "live", WorkerRole.WORKER, now=T0)
    register_worker(ledger, run, "dead", WorkerRole.WORKER, now=T0 - timedelta(seconds=120))
    register_worker(ledger, run, "old coordinator", WorkerRole.COORDINATOR, now=T0)
    live = claim(ledger, run, info.pass_no, "live", 2, now=T0)
    dead = claim(ledger, run, info.pass_no, "dead", 2, now=T0)
    crashed = claim(ledger, run, info.pass_no, "old coordinator", 2, now=T0)

    resumed = begin_pass(ledger, run, coordinator="new", lease_seconds=LEASE, now=T0)

    # the old coordinator is dead: we hold the lock
    assert resumed.reset == len(dead) + len(crashed)
    owners = _owners(ledger, run)
    assert {owners[c.delivery.seq] for c in live} == {(DeliveryStatus.SENDING, "live")}
    assert {owners[c.delivery.seq] for c in dead + crashed} == {(DeliveryStatus.PENDING, None)}
    assert _unknown(ledger, run) == {c.delivery.seq for c in dead + crashed}
    with ledger.connect() as conn:
        stopped = {w.id: w.stopped_at for w in list_workers(conn, run)}
    assert stopped == {"live": None, "dead": None, "old coordinator": T0}


def test_claims_come_back_only_after_their_owners_lease(ledger: sa.Engine, run: RunRecord) -> None:
    info = begin_pass(ledger, run)
    register_worker(ledger, run, "w1", WorkerRole.WORKER, now=T0)
    mine = claim(ledger, run, info.pass_no, "w1", 3, now=T0)

    # within the lease, and again after a heartbeat renewed it: nothing comes back
    assert take_back(ledger, run, LEASE, now=T0 + timedelta(seconds=LEASE - 1)) == 0
    assert heartbeat(ledger, run, "w1", now=T0 + timedelta(seconds=50))
    assert take_back(ledger, run, LEASE, now=T0 + timedelta(seconds=LEASE + 1)) == 0
    # silent for longer than the lease: the claims go back to the queue, outcome unknown
    later = T0 + timedelta(seconds=50 + LEASE + 1)
    assert take_back(ledger, run, LEASE, now=later) == len(mine)
    assert {_owners(ledger, run)[c.delivery.seq] for c in mine} == {(DeliveryStatus.PENDING, None)}
    assert _unknown(ledger, run) == {c.delivery.seq for c in mine}
    retaken = claim(ledger, run, info.pass_no, "w2", 12, now=later)
    assert {c.delivery.seq for c in mine} <= {c.delivery.seq for c in retaken}


def test_a_stopped_owner_cannot_renew_its_lease(ledger: sa.Engine, run: RunRecord) -> None:
    register_worker(ledger, run, "w1", WorkerRole.WORKER, now=T0)
    assert heartbeat(ledger, run, "w1", now=T0)
    stop_worker(ledger, run, "w1", now=T0)
    assert not heartbeat(ledger, run, "w1", now=T0)
    assert not heartbeat(ledger, run, "never registered", now=T0)


def test_the_pace_hands_out_slots_that_never_overlap(ledger: sa.Engine, run: RunRecord) -> None:
    # two processes asking at the same moment get consecutive blocks of the one schedule
    assert reserve_pace(ledger, run, 5, 0.1, now=T0) == 0.0
    assert reserve_pace(ledger, run, 5, 0.1, now=T0) == 0.5
    assert reserve_pace(ledger, run, 2, 0.1, now=T0 + timedelta(seconds=0.2)) == 0.8
    # an idle spell banks nothing: the next block starts now, not in the past
    assert reserve_pace(ledger, run, 1, 0.1, now=T0 + timedelta(seconds=10)) == 0.0
