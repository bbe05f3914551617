"""Bounces that came back after the relay accepted a message (SPEC §10 `bounces import`).

The parser (`jobs.bounces`) finds which delivery a notification concerns; this module looks
deliveries up and writes what the notification means, in one transaction per import:
- a hard bounce (5.x.x) sets the delivery `bounced` (DSN status and diagnostic kept for the
  audit) and puts its address on the ledger's suppression list with the run;
- a soft bounce (4.x.x) is recorded and changes nothing else.
Each (delivery, bounce message) pair is stored once, so importing a mailbox again is a no-op.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from jobs.ledger.codec import utc_now
from jobs.ledger.models import BounceRow, DeliveryRow, RunRow, SuppressionRow
from jobs.ledger.suppressions import suppression_insert
from jobs.ledger.values import BounceKind, DeliveryStatus
from resolver.model import SuppressionReason
from resolver.normalize import dedupe_key

__all__ = [
    "BOUNCEABLE",
    "BounceTally",
    "DeliveryRef",
    "MatchedBounce",
    "deliveries_by_id",
    "deliveries_by_message_id",
    "record_bounces",
]

# A DSN proves the relay took the message: these may become `bounced`. `pending` and `sending`
# are left alone (the sender still owns them); a `bounced` one stays as it is.
BOUNCEABLE = frozenset({DeliveryStatus.SENT, DeliveryStatus.DEFERRED, DeliveryStatus.FAILED})
_LOOKUP_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    """What matching a bounce needs to know about a delivery."""

    delivery_id: int
    run_id: str
    email: str
    message_id: str
    status: DeliveryStatus


@dataclass(frozen=True, slots=True)
class MatchedBounce:
    """A notification about one delivery, as the parser read it."""

    delivery: DeliveryRef
    fingerprint: str  # the bounce message's identity: one import per (delivery, fingerprint)
    kind: BounceKind
    dsn_status: str  # e.g. 5.1.1
    diagnostic: str
    matched_by: str  # message_id | verp


@dataclass
class BounceTally:
    """What one import changed (zero everywhere when the mailbox was imported before)."""

    hard: int = 0  # new hard bounces recorded
    soft: int = 0  # new soft bounces recorded
    bounced: int = 0  # deliveries that became `bounced`
    suppressed: int = 0  # addresses newly on the ledger's suppression list
    repeated: int = 0  # already imported before


_REF_COLUMNS = (
    DeliveryRow.id,
    RunRow.run_id,
    DeliveryRow.email,
    DeliveryRow.message_id,
    DeliveryRow.status,
)


def _refs(
    conn: sa.Connection, column: sa.ColumnElement[object], values: list[object]
) -> list[DeliveryRef]:
    refs = []
    for start in range(0, len(values), _LOOKUP_CHUNK):
        chunk = values[start : start + _LOOKUP_CHUNK]
        stmt = (
            sa.select(*_REF_COLUMNS)
            .join(RunRow, RunRow.pk == DeliveryRow.run_pk)
            .where(column.in_(chunk))
        )
        refs += [
            DeliveryRef(r.id, r.run_id, r.email, r.message_id, r.status) for r in conn.execute(stmt)
        ]
    return refs


def deliveries_by_message_id(
    conn: sa.Connection, message_ids: Collection[str]
) -> dict[str, DeliveryRef]:
    """The deliveries whose frozen Message-ID is one of `message_ids` (`<…@…>` form)."""
    refs = _refs(conn, DeliveryRow.message_id, sorted(message_ids))  # type: ignore[arg-type]
    return {ref.message_id: ref for ref in refs}


def deliveries_by_id(conn: sa.Connection, ids: Collection[int]) -> dict[int, DeliveryRef]:
    """The deliveries with these ledger ids (a VERP token names one)."""
    refs = _refs(conn, DeliveryRow.id, sorted(ids))  # type: ignore[arg-type]
    return {ref.delivery_id: ref for ref in refs}


def _reply_text(b: MatchedBounce) -> str:
    """The diagnostic, led by the DSN status when it does not quote it itself."""
    if b.dsn_status in b.diagnostic:
        return b.diagnostic
    return f"{b.dsn_status} {b.diagnostic}".strip()


def record_bounces(
    engine: sa.Engine, bounces: Sequence[MatchedBounce], *, now: datetime | None = None
) -> BounceTally:
    """Record every notification not recorded before; all in one transaction."""
    tally = BounceTally()
    if not bounces:
        return tally
    now = utc_now() if now is None else now
    with engine.begin() as conn:
        ids = sorted({b.delivery.delivery_id for b in bounces})
        seen: set[tuple[int, str]] = set()
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            seen.update(
                conn.execute(
                    sa.select(BounceRow.delivery_id, BounceRow.fingerprint).where(
                        BounceRow.delivery_id.in_(chunk)
                    )
                )
            )
        for b in bounces:
            pair = (b.delivery.delivery_id, b.fingerprint)
            if pair in seen:
                tally.repeated += 1
                continue
            seen.add(pair)
            conn.execute(
                sa.insert(BounceRow).values(
                    delivery_id=b.delivery.delivery_id,
                    fingerprint=b.fingerprint,
                    kind=b.kind,
                    dsn_status=b.dsn_status,
                    diagnostic=b.diagnostic,
                    matched_by=b.matched_by,
                    imported_at=now,
                )
            )
            if b.kind is BounceKind.SOFT:
                tally.soft += 1  # §10: recorded only; the delivery stays `sent`
                continue
            tally.hard += 1
            tally.bounced += conn.execute(
                sa.update(DeliveryRow)
                .where(
                    DeliveryRow.id == b.delivery.delivery_id,
                    DeliveryRow.status.in_(BOUNCEABLE),
                )
                .values(
                    status=DeliveryStatus.BOUNCED,
                    dsn_status=b.dsn_status,
                    last_error=b.diagnostic,
                )
            ).rowcount
            # §10: the delivery's own normalized address (its dedupe key) is suppressed; counted
            # by a look first, as rowcounts of "insert or ignore" differ between databases
            key = dedupe_key(b.delivery.email)
            if key is None:  # cannot happen for a frozen delivery's address; kept honest
                continue
            on_list = conn.execute(
                sa.select(SuppressionRow.email).where(SuppressionRow.email == key)
            ).first()
            if on_list is None:
                conn.execute(
                    suppression_insert(conn.dialect),
                    {
                        "email": key,
                        "reason": SuppressionReason.HARD_BOUNCE,
                        "created_at": now,
                        "run_id": b.delivery.run_id,
                        "smtp_code": None,
                        "smtp_text": _reply_text(b),
                        "note": None,
                    },
                )
                tally.suppressed += 1
    return tally
