"""The freeze as it was written before issue 10's bulk path: SQLAlchemy Core, one dict per row.

Kept for `test_bulk_freeze.py` only, as the reference the driver-level path must match row for
row (columns, values, order of ids). A copy of `jobs.ledger.store.create_run`'s writing part and
of `jobs.ledger.codec.accounts_to_json` as of 3049184, without the race handling the comparison
does not need.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa

from jobs.config.runs import make_run_id
from jobs.ledger.codec import utc_now
from jobs.ledger.models import AuditRowRow, DeliveryRow, LedgerBase, RunRow, WarningRow
from jobs.ledger.store import get_run
from jobs.ledger.values import DeliveryStatus, RunRecord
from resolver.model import (
    AccountRef,
    AuditRow,
    Decision,
    DedupeMode,
    Delivery,
    Warning,
    join_reasons,
)

CHUNK_ROWS = 2000


def accounts_to_json(accounts: Iterable[AccountRef]) -> str:
    """`jobs.ledger.codec.accounts_to_json` as of 3049184."""
    return json.dumps(
        [
            {
                "kind": a.kind.value,
                "id": a.id,
                "name": a.name,
                "roles": [role.value for role in a.roles],
                "postal_code": a.postal_code,
                "address": a.address,
            }
            for a in accounts
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _insert_all(
    conn: sa.Connection, model: type[LedgerBase], rows: Iterable[Mapping[str, Any]]
) -> int:
    count = 0
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK_ROWS)):
        conn.execute(sa.insert(model), chunk)
        count += len(chunk)
    return count


def _delivery_rows(
    run_pk: int, deliveries: Iterable[Delivery], message_id_for: Callable[[str], str]
) -> Iterator[dict[str, Any]]:
    for d in deliveries:
        yield {
            "run_pk": run_pk,
            "seq": d.seq,
            "delivery_key": d.key,
            "email": d.email,
            "name": d.name,
            "audience": d.audience,
            "reasons": join_reasons(d.reasons),
            "accounts": accounts_to_json(d.accounts),
            "message_id": message_id_for(d.key),
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "pass_no": 0,
            "unconfirmed": 0,
            "possible_duplicate": 0,
            "outcome_unknown": False,
            "not_before": None,
            "retry_attempts": 0,
        }


def _audit_rows(
    run_pk: int, rows: Iterable[AuditRow], decisions: Counter[Decision]
) -> Iterator[dict[str, Any]]:
    for row_no, d in enumerate(rows, start=1):
        decisions[d.decision] += 1
        yield {
            "run_pk": run_pk,
            "row_no": row_no,
            "decision": d.decision,
            "reasons": join_reasons(d.reasons),
            "audience": d.audience,
            "account_id": d.account_id,
            "account_name": d.account_name,
            "source": d.source,
            "person_id": d.person_id,
            "name": d.name,
            "email": d.email,
            "delivery_email": d.delivery_email,
            "delivery_key": d.delivery_key,
        }


def _warning_rows(run_pk: int, warnings: Iterable[Warning]) -> Iterator[dict[str, Any]]:
    for warning_no, w in enumerate(warnings, start=1):
        yield {
            "run_pk": run_pk,
            "warning_no": warning_no,
            "code": w.code,
            "account_id": w.account_id,
            "person_id": w.person_id,
            "email": w.email,
            "detail": w.detail,
        }


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
    """`jobs.ledger.store.create_run` through SQLAlchemy Core, for a run that does not exist."""
    run_id = make_run_id(campaign_id, run_key)
    now = utc_now() if now is None else now
    with engine.begin() as conn:
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
        key = inserted.inserted_primary_key
        assert key is not None
        run_pk = int(key[0])
        decisions: Counter[Decision] = Counter()
        candidates = _insert_all(conn, AuditRowRow, _audit_rows(run_pk, audit_rows, decisions))
        delivery_count = _insert_all(
            conn, DeliveryRow, _delivery_rows(run_pk, deliveries, message_id_for)
        )
        warning_count = _insert_all(conn, WarningRow, _warning_rows(run_pk, warnings))
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
    with engine.connect() as conn:
        created = get_run(conn, run_id)
    assert created is not None
    return created
