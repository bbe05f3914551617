"""Runs and their frozen resolution (SPEC §7: the first `run` resolves and freezes the set).

Transactions: readers take a `Connection` and leave its transaction to the caller. `create_run`
takes the `Engine` and owns its one transaction, because "everything frozen or nothing" is the
point of the function: a crash half-way through must leave no run behind, so that the next `run`
resolves again instead of sending half a campaign.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from jobs.config.runs import make_run_id
from jobs.ledger.codec import accounts_to_json, utc_now
from jobs.ledger.models import AuditRowRow, DeliveryRow, RunRow, WarningRow
from jobs.ledger.values import OPEN_STATUSES, DeliveryStatus, RunRecord
from jobs.source.bulk import insert_rows
from resolver.model import (
    AuditRow,
    Decision,
    DedupeMode,
    Delivery,
    Reason,
    Warning,
    join_reasons,
)

__all__ = [
    "create_run",
    "finish_run",
    "get_run",
    "list_runs",
]


def _table(model: type[Any]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


_AUDIT = _table(AuditRowRow)
_DELIVERIES = _table(DeliveryRow)
_WARNINGS = _table(WarningRow)


def _record(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(
        pk=row.pk,
        run_id=row.run_id,
        campaign_id=row.campaign_id,
        run_key=row.run_key,
        as_of=row.as_of,
        dedupe=row.dedupe,
        template=row.template,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        finished_at=row.finished_at,
        candidates=row.candidates,
        sends=row.sends,
        merged=row.merged,
        skips=row.skips,
        deliveries=row.deliveries,
        warnings=row.warnings,
        coordinator=row.coordinator,
        pass_no=row.pass_no,
    )


_RUN_COLUMNS = tuple(RunRow.__table__.c)


def get_run(conn: sa.Connection, run_id: str) -> RunRecord | None:
    """The run `<campaign_id>/<run_key>`, or None when it was never started."""
    row = conn.execute(sa.select(*_RUN_COLUMNS).where(RunRow.run_id == run_id)).one_or_none()
    return None if row is None else _record(row)


def list_runs(conn: sa.Connection) -> list[RunRecord]:
    """Every run, oldest first (for `status`)."""
    return [_record(row) for row in conn.execute(sa.select(*_RUN_COLUMNS).order_by(RunRow.pk))]


# The columns each frozen table is written with, in the order of the row tuples below; the
# others keep their defaults (NULL): a delivery is frozen before any attempt was made.
_AUDIT_COLUMNS = (
    "run_pk",
    "row_no",
    "decision",
    "reasons",
    *AuditRow._fields[2:],  # audience … delivery_key: the columns of the same names, in order
)
_DELIVERY_COLUMNS = (
    "run_pk",
    "seq",
    "delivery_key",
    "email",
    "name",
    "audience",
    "reasons",
    "accounts",
    "message_id",
    "status",
    "attempts",
    "pass_no",
    "unconfirmed",
    "possible_duplicate",
    "outcome_unknown",
    "not_before",
    "retry_attempts",
)
# status … retry_attempts of a delivery nobody has tried to send yet
_UNSENT = (DeliveryStatus.PENDING, 0, 0, 0, 0, False, None, 0)
_WARNING_COLUMNS = ("run_pk", "warning_no", "code", "account_id", "person_id", "email", "detail")


class _JoinedReasons(dict[tuple[Reason, ...], str]):
    """`join_reasons` once per distinct tuple of codes: a run has few of them, and many rows."""

    def __missing__(self, reasons: tuple[Reason, ...]) -> str:
        joined = self[reasons] = join_reasons(reasons)
        return joined


def _delivery_rows(
    run_pk: int, deliveries: Iterable[Delivery], message_id_for: Callable[[str], str]
) -> Iterator[tuple[Any, ...]]:
    joined = _JoinedReasons()
    for d in deliveries:
        key = d.key
        yield (
            run_pk,
            d.seq,
            key,
            d.email,
            d.name,
            d.audience,
            joined[d.reasons],
            accounts_to_json(d.accounts),
            message_id_for(key),  # §6: derived once, reused by every resend
            *_UNSENT,
        )


def _audit_rows(
    run_pk: int, rows: Iterable[AuditRow], decisions: Counter[Decision]
) -> Iterator[tuple[Any, ...]]:
    joined = _JoinedReasons()
    for row_no, d in enumerate(rows, start=1):
        decision = d[0]
        decisions[decision] += 1
        yield (run_pk, row_no, decision, joined[d[1]], *d[2:])


def _warning_rows(run_pk: int, warnings: Iterable[Warning]) -> Iterator[tuple[Any, ...]]:
    for warning_no, w in enumerate(warnings, start=1):
        yield (run_pk, warning_no, w.code, w.account_id, w.person_id, w.email, w.detail)


class _RunExists(Exception):
    """Another process froze the same run first (its transaction committed before ours)."""


def create_run(
    engine: sa.Engine,
    *,
    campaign_id: str,
    run_key: str,
    as_of: date,
    dedupe: DedupeMode,
    template: str,
    audit_rows: Iterable[AuditRow],
    deliveries: Iterable[Delivery],
    warnings: Iterable[Warning],
    message_id_for: Callable[[str], str],
    now: datetime | None = None,
) -> RunRecord:
    """Freeze a run's resolution in one transaction; an existing run is returned untouched.

    §7: a run is resolved once. When the run exists, the iterables are not consumed at all, so a
    caller may pass lazy generators and check `get_run` first to skip resolving. `audit_rows` is
    consumed completely before `deliveries` and `warnings` are started.
    """
    run_id = make_run_id(campaign_id, run_key)
    with engine.connect() as conn:
        existing = get_run(conn, run_id)
    if existing is not None:
        return existing
    now = utc_now() if now is None else now
    try:
        with engine.begin() as conn:
            try:
                inserted = conn.execute(
                    sa.insert(RunRow).values(
                        run_id=run_id,
                        campaign_id=campaign_id,
                        run_key=run_key,
                        as_of=as_of,
                        dedupe=dedupe,
                        template=template,
                        created_at=now,
                        resolved_at=now,
                        pass_no=0,
                    )
                )
            except sa.exc.IntegrityError as exc:
                raise _RunExists from exc
            key = inserted.inserted_primary_key
            if key is None:
                raise RuntimeError("the database returned no key for the new run")
            run_pk = int(key[0])
            decisions: Counter[Decision] = Counter()
            # Audit rows first: a caller may stream them straight out of a resolution whose
            # deliveries are complete only once the last row has been decided.
            # Plain tuples on the driver's bulk path (jobs.source.bulk), in this transaction.
            candidates = insert_rows(
                conn, _AUDIT, _AUDIT_COLUMNS, _audit_rows(run_pk, audit_rows, decisions)
            )
            delivery_count = insert_rows(
                conn,
                _DELIVERIES,
                _DELIVERY_COLUMNS,
                _delivery_rows(run_pk, deliveries, message_id_for),
            )
            warning_count = insert_rows(
                conn, _WARNINGS, _WARNING_COLUMNS, _warning_rows(run_pk, warnings)
            )
            conn.execute(
                sa.update(RunRow)
                .where(RunRow.pk == run_pk)
                .values(
                    candidates=candidates,
                    sends=decisions[Decision.SEND],
                    merged=decisions[Decision.MERGED],
                    skips=decisions[Decision.SKIP],
                    deliveries=delivery_count,
                    warnings=warning_count,
                )
            )
    except _RunExists:
        pass
    with engine.connect() as conn:
        created = get_run(conn, run_id)
    if created is None:
        raise RuntimeError(f"run {run_id} vanished right after it was frozen")
    return created


def finish_run(engine: sa.Engine, run: RunRecord, *, now: datetime | None = None) -> bool:
    """Stamp `finished_at` when every delivery is `sent` or `failed`; True when the run is done."""
    now = utc_now() if now is None else now
    still_open = sa.exists().where(
        DeliveryRow.run_pk == run.pk, DeliveryRow.status.in_(OPEN_STATUSES)
    )
    with engine.begin() as conn:
        conn.execute(
            sa.update(RunRow)
            .where(RunRow.pk == run.pk, RunRow.finished_at.is_(None), ~still_open)
            .values(finished_at=now)
        )
        finished = conn.execute(
            sa.select(RunRow.finished_at).where(RunRow.pk == run.pk)
        ).scalar_one()
    return finished is not None
