"""What earlier runs of a campaign left in the ledger (SPEC §4 ALREADY_SENT, §9 nightly, approval).

A campaign's run state is always a query over delivery rows (finished = none `pending`, `sending`
or `deferred`), never a counter or a `finished_at` stamp alone: a process that died after its
last confirmation but before stamping the run must still count as finished.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.config.schedule import parse_schedule
from jobs.ledger.codec import utc_now
from jobs.ledger.migrate import ledger_exists
from jobs.ledger.models import ApprovalRow, DeliveryRow, ExpiredOccurrenceRow, RunRow
from jobs.ledger.store import get_run
from jobs.ledger.values import OPEN_STATUSES, DeliveryStatus, RunRecord

__all__ = [
    "Approval",
    "already_sent_for",
    "already_sent_keys",
    "get_approval",
    "record_expired",
    "run_is_finished",
    "save_approval",
    "unfinished_run",
]


def already_sent_keys(conn: sa.Connection, campaign_id: str, run_key: str) -> frozenset[str]:
    """Delivery keys that runs of the campaign under another run key sent.

    A delivery that bounced later (§10 `bounced`) was sent too: the relay took it, so a rerun of
    a one-off campaign must not mail it again any more than a `sent` one.
    """
    stmt = (
        sa.select(DeliveryRow.delivery_key)
        .join(RunRow, RunRow.pk == DeliveryRow.run_pk)
        .where(
            RunRow.campaign_id == campaign_id,
            RunRow.run_key != run_key,
            DeliveryRow.status.in_((DeliveryStatus.SENT, DeliveryStatus.BOUNCED)),
        )
        .distinct()
    )
    return frozenset(conn.execute(stmt).scalars())


def already_sent_for(
    engine: sa.Engine, campaign: Campaign, run_key: str, *, resend: bool = False
) -> frozenset[str]:
    """§4 ALREADY_SENT's input for a run: empty for recurring campaigns and `--resend`."""
    schedule = parse_schedule(campaign.schedule)
    if resend or (schedule is not None and schedule.recurring) or not ledger_exists(engine):
        return frozenset()
    with engine.connect() as conn:
        return already_sent_keys(conn, campaign.id, run_key)


def _open_deliveries(run_pk: int | sa.orm.InstrumentedAttribute[int]) -> sa.Exists:
    return sa.exists().where(DeliveryRow.run_pk == run_pk, DeliveryRow.status.in_(OPEN_STATUSES))


def run_is_finished(conn: sa.Connection, run: RunRecord) -> bool:
    """§9: a run is finished when no delivery is left `pending`, `sending` or `deferred`."""
    return not conn.execute(sa.select(_open_deliveries(run.pk))).scalar_one()


def unfinished_run(conn: sa.Connection, campaign_id: str) -> RunRecord | None:
    """The campaign's newest run that still has open deliveries (what `run` resumes by default)."""
    run_id = conn.execute(
        sa.select(RunRow.run_id)
        .where(RunRow.campaign_id == campaign_id, _open_deliveries(RunRow.pk))
        .order_by(RunRow.pk.desc())
        .limit(1)
    ).scalar()
    return None if run_id is None else get_run(conn, run_id)


def record_expired(
    engine: sa.Engine, campaign_id: str, run_key: str, occurrence_at: datetime
) -> bool:
    """Record an expired occurrence; True the first time (§9: exit 3 and an alert, once)."""
    with engine.begin() as conn:
        seen = conn.execute(
            sa.select(ExpiredOccurrenceRow.recorded_at).where(
                ExpiredOccurrenceRow.campaign_id == campaign_id,
                ExpiredOccurrenceRow.run_key == run_key,
            )
        ).first()
        if seen is not None:
            return False
        try:
            conn.execute(
                sa.insert(ExpiredOccurrenceRow).values(
                    campaign_id=campaign_id,
                    run_key=run_key,
                    occurrence_at=occurrence_at,
                    recorded_at=utc_now(),
                )
            )
        except sa.exc.IntegrityError:
            return False  # recorded meanwhile by another ledger user
    return True


@dataclass(frozen=True, slots=True)
class Approval:
    """One `approve` of a run key: the fingerprint parts and the counts the operator saw."""

    campaign_id: str
    run_key: str
    as_of: date
    fingerprint: str
    parts: Mapping[str, str]  # campaign_file, templates, message → sha256 hex
    counts: Mapping[str, Mapping[str, int]]  # audience → decision → n
    approved_at: datetime
    approved_by: str


def get_approval(conn: sa.Connection, campaign_id: str, run_key: str) -> Approval | None:
    row = conn.execute(
        sa.select(*ApprovalRow.__table__.c).where(
            ApprovalRow.campaign_id == campaign_id, ApprovalRow.run_key == run_key
        )
    ).one_or_none()
    if row is None:
        return None
    return Approval(
        campaign_id=row.campaign_id,
        run_key=row.run_key,
        as_of=row.as_of,
        fingerprint=row.fingerprint,
        parts=json.loads(row.parts),
        counts=json.loads(row.counts),
        approved_at=row.approved_at,
        approved_by=row.approved_by,
    )


def save_approval(engine: sa.Engine, approval: Approval) -> None:
    """Record (or replace) the approval of a run key: approving again after a change is normal."""
    values = {
        "as_of": approval.as_of,
        "fingerprint": approval.fingerprint,
        "parts": json.dumps(dict(approval.parts), sort_keys=True),
        "counts": json.dumps({k: dict(v) for k, v in approval.counts.items()}, sort_keys=True),
        "approved_at": approval.approved_at,
        "approved_by": approval.approved_by,
    }
    with engine.begin() as conn:
        conn.execute(
            sa.delete(ApprovalRow).where(
                ApprovalRow.campaign_id == approval.campaign_id,
                ApprovalRow.run_key == approval.run_key,
            )
        )
        conn.execute(
            sa.insert(ApprovalRow).values(
                campaign_id=approval.campaign_id, run_key=approval.run_key, **values
            )
        )
