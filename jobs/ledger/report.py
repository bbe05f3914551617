"""What the ledger knows, read back for `status`, the audit export and resolution (SPEC §5, §7).

Readers take a `Connection` and leave the transaction to the caller, so that several reads can
share one snapshot. Progress is always counted here, from delivery rows, never kept in counters.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from jobs.ledger.migrate import ledger_exists
from jobs.ledger.models import AuditRowRow, DeliveryRow, SuppressionRow, WarningRow
from jobs.ledger.values import AuditExportRow, DeliveryStatus, RunRecord, RunStats
from resolver.model import Warning, split_reasons

__all__ = ["YIELD_ROWS", "iter_audit", "iter_warnings", "load_suppression_keys", "stats"]

YIELD_ROWS = 1000  # rows fetched per round trip while streaming an export


def stats(conn: sa.Connection, run: RunRecord) -> RunStats:
    """Deliveries of the run by status, with the unconfirmed and possible-duplicate totals."""
    rows = conn.execute(
        sa.select(
            DeliveryRow.status,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(DeliveryRow.unconfirmed), 0),
            sa.func.coalesce(sa.func.sum(DeliveryRow.possible_duplicate), 0),
        )
        .where(DeliveryRow.run_pk == run.pk)
        .group_by(DeliveryRow.status)
    ).all()
    return RunStats(
        counts={status: int(count) for status, count, _, _ in rows},
        unconfirmed=sum(int(unconfirmed) for _, _, unconfirmed, _ in rows),
        possible_duplicate=sum(int(duplicate) for _, _, _, duplicate in rows),
    )


def iter_audit(conn: sa.Connection, run: RunRecord) -> Iterator[AuditExportRow]:
    """The run's audit rows in resolution order, each with its delivery's state (SPEC §5).

    Streams: consume it before using `conn` for anything else (MariaDB cannot run a second
    query on a connection that is still reading a result).
    """
    stmt = (
        sa.select(
            AuditRowRow.decision,
            AuditRowRow.reasons,
            AuditRowRow.audience,
            AuditRowRow.account_id,
            AuditRowRow.account_name,
            AuditRowRow.source,
            AuditRowRow.person_id,
            AuditRowRow.name,
            AuditRowRow.email,
            AuditRowRow.delivery_email,
            DeliveryRow.status,
            DeliveryRow.attempts,
            DeliveryRow.last_smtp_code,
            DeliveryRow.last_error,
            DeliveryRow.message_id,
            DeliveryRow.sent_at,
        )
        .select_from(AuditRowRow)
        # skip rows have no delivery key: their delivery columns stay empty (§5)
        .outerjoin(
            DeliveryRow,
            sa.and_(
                DeliveryRow.run_pk == AuditRowRow.run_pk,
                DeliveryRow.delivery_key == AuditRowRow.delivery_key,
            ),
        )
        .where(AuditRowRow.run_pk == run.pk)
        .order_by(AuditRowRow.row_no)
        .execution_options(yield_per=YIELD_ROWS)
    )
    for row in conn.execute(stmt):
        status = row.status
        if status is DeliveryStatus.SENDING:
            # §5 has no "sending": a claimed delivery is not confirmed, so it is still pending
            status = DeliveryStatus.PENDING
        yield AuditExportRow(
            run_id=run.run_id,
            campaign_id=run.campaign_id,
            decision=row.decision,
            reasons=split_reasons(row.reasons),
            audience=row.audience,
            account_id=row.account_id,
            account_name=row.account_name,
            source=row.source,
            person_id=row.person_id,
            name=row.name,
            email=row.email,
            delivery_email=row.delivery_email,
            status=status,
            attempts=row.attempts,
            last_smtp_code=row.last_smtp_code,
            last_error=row.last_error,
            message_id=row.message_id,
            sent_at=row.sent_at,
        )


def iter_warnings(conn: sa.Connection, run: RunRecord) -> Iterator[Warning]:
    """The warnings frozen with the run, in the order the resolution reported them."""
    stmt = (
        sa.select(
            WarningRow.code,
            WarningRow.account_id,
            WarningRow.person_id,
            WarningRow.email,
            WarningRow.detail,
        )
        .where(WarningRow.run_pk == run.pk)
        .order_by(WarningRow.warning_no)
        .execution_options(yield_per=YIELD_ROWS)
    )
    for row in conn.execute(stmt):
        yield Warning(
            code=row.code,
            account_id=row.account_id,
            person_id=row.person_id,
            email=row.email,
            detail=row.detail,
        )


def load_suppression_keys(conn: sa.Connection) -> set[str]:
    """Addresses the job suppressed itself (§7: unioned with the imported list by the caller)."""
    return set(conn.execute(sa.select(SuppressionRow.email)).scalars())


def ledger_suppressions(engine: sa.Engine) -> frozenset[str]:
    """The job's own hard bounces (§7), or nothing when the ledger does not exist yet."""
    if not ledger_exists(engine):
        return frozenset()
    with engine.connect() as conn:
        return frozenset(load_suppression_keys(conn))
