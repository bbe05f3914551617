"""The delivery queue of a run: passes, claims and confirmed results (SPEC §7).

Every function here takes the `Engine` and owns one short transaction, because its commit is the
crash-safety guarantee: a claim is committed before the message goes out (so a crash leaves it
`sending`, found by the next pass), and a result is committed as soon as the server confirmed it
(so at most the last uncommitted batch can be sent twice after a kill -9).

Claims: PostgreSQL and MariaDB (10.6+) lock the claimed rows with `FOR UPDATE SKIP LOCKED`, so
several workers on several machines take disjoint sets without waiting on each other. SQLite
serializes writers, so there one `UPDATE … RETURNING` statement both picks and marks the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from jobs.ledger.codec import accounts_from_json, utc_now
from jobs.ledger.models import DeliveryRow, RunRow, WorkerRole, WorkerRow
from jobs.ledger.suppressions import suppression_insert
from jobs.ledger.values import ClaimedDelivery, DeliveryResult, DeliveryStatus, PassInfo, RunRecord
from jobs.ledger.workers import live_owner, unconfirmed_back_to_queue
from resolver.model import REASON_SEPARATOR, Delivery, Reason, SuppressionReason, split_reasons
from resolver.normalize import dedupe_key

__all__ = ["QueueState", "begin_pass", "claim", "queue_state", "record", "release"]

AnyRow = sa.Row[*tuple[Any, ...]]

_CLAIM_COLUMNS = (
    DeliveryRow.id,
    DeliveryRow.seq,
    DeliveryRow.delivery_key,
    DeliveryRow.email,
    DeliveryRow.name,
    DeliveryRow.audience,
    DeliveryRow.reasons,
    DeliveryRow.accounts,
    DeliveryRow.message_id,
    DeliveryRow.attempts,
    DeliveryRow.unconfirmed,
    DeliveryRow.outcome_unknown,
    DeliveryRow.retry_attempts,
)


def begin_pass(
    engine: sa.Engine,
    run: RunRecord,
    *,
    coordinator: str | None = None,
    lease_seconds: float | None = None,
    now: datetime | None = None,
) -> PassInfo:
    """Start a sending pass; only the coordinator holding the run lock may call it.

    With `lease_seconds`, a live `worker`'s claims are left alone (§9: it is still sending
    them); without, every `sending` delivery is reset (no worker can be running).

    Deliveries still `sending` were claimed when an earlier process died: they go back to
    `pending`, count as unconfirmed and their outcome as unknown (§7: retried with the same
    Message-ID; each one resent is a possible duplicate, counted when it is sent again).
    Deliveries `deferred` by an earlier pass become `pending` again: each pass tries a delivery
    once, so one deferred in this pass waits for the next `run`.
    """
    with engine.begin() as conn:
        # the row lock serializes two passes started at once (the run lock should prevent it)
        current = conn.execute(
            sa.select(RunRow.pass_no).where(RunRow.pk == run.pk).with_for_update()
        ).scalar_one()
        pass_no = current + 1
        conn.execute(
            sa.update(RunRow)
            .where(RunRow.pk == run.pk)
            .values(pass_no=pass_no, coordinator=coordinator)
        )
        in_flight = [DeliveryRow.run_pk == run.pk, DeliveryRow.status == DeliveryStatus.SENDING]
        now = utc_now() if now is None else now
        if lease_seconds is not None:
            cutoff = now - timedelta(seconds=lease_seconds)
            in_flight.append(~live_owner(run, cutoff, WorkerRole.WORKER))
        # we hold the run lock: every other coordinator is dead, whatever its lease says
        conn.execute(
            sa.update(WorkerRow)
            .where(
                WorkerRow.run_pk == run.pk,
                WorkerRow.role == WorkerRole.COORDINATOR,
                WorkerRow.stopped_at.is_(None),
            )
            .values(stopped_at=now)
        )
        reset = conn.execute(
            sa.update(DeliveryRow).where(*in_flight).values(**unconfirmed_back_to_queue())
        ).rowcount
        # a new retry series: max_attempts again, from now (a waiting `pending` keeps its own)
        retried = conn.execute(
            sa.update(DeliveryRow)
            .where(DeliveryRow.run_pk == run.pk, DeliveryRow.status == DeliveryStatus.DEFERRED)
            .values(status=DeliveryStatus.PENDING, retry_attempts=0, not_before=None)
        ).rowcount
    return PassInfo(pass_no=pass_no, reset=reset, retried=retried)


_REASONS: dict[str, Reason] = {reason.value: reason for reason in Reason}


def _reasons(text: str) -> tuple[Reason, ...]:
    """`split_reasons` with the members looked up by spelling (no Enum call per code)."""
    try:
        return tuple([_REASONS[code] for code in text.split(REASON_SEPARATOR) if code])
    except KeyError:
        return split_reasons(text)  # raises the enum's own ValueError


def _claimed(row: AnyRow, run: RunRecord, worker_id: str, pass_no: int) -> ClaimedDelivery:
    return ClaimedDelivery(
        delivery_id=row.id,
        run_id=run.run_id,
        delivery=Delivery(
            key=row.delivery_key,
            email=row.email,
            name=row.name,
            audience=row.audience,
            reasons=_reasons(row.reasons),
            accounts=accounts_from_json(row.accounts),
            seq=row.seq,
        ),
        message_id=row.message_id,
        attempts=row.attempts,
        unconfirmed=row.unconfirmed,
        outcome_unknown=bool(row.outcome_unknown),
        claimed_by=worker_id,
        pass_no=pass_no,
        retry_attempts=row.retry_attempts,
    )


@dataclass(frozen=True, slots=True)
class _ClaimStatements:
    """A claim's statements, built once per dialect and batch size (see `_claim_statements`)."""

    pick: sa.Executable  # SQLite: the whole claim; else: the ids, row-locked
    mark: sa.Executable | None  # PostgreSQL/MariaDB: mark the picked ids `sending`
    fetch: sa.Executable | None  # MariaDB (no UPDATE … RETURNING): read the claimed rows


@lru_cache(maxsize=32)
def _claim_statements(dialect: str, limit: int, retries_only: bool) -> _ClaimStatements:
    """The claim's SQL with every varying value a bound parameter, built once.

    Building SQLAlchemy statements is Python work (coercions, cache keys of the `values`): built
    per call it cost about as much as the claim's SQL itself, once per batch of a sending pass.
    """
    marks: dict[str, Any] = {
        "status": DeliveryStatus.SENDING,
        "claimed_by": sa.bindparam("c_worker"),
        "claimed_at": sa.bindparam("c_now"),
        "pass_no": sa.bindparam("c_pass"),
        "not_before": None,
    }
    pending = (
        sa.select(*_CLAIM_COLUMNS)
        .where(
            DeliveryRow.run_pk == sa.bindparam("c_run"),
            DeliveryRow.status == DeliveryStatus.PENDING,
            sa.or_(
                DeliveryRow.not_before.is_(None), DeliveryRow.not_before <= sa.bindparam("c_now")
            ),
        )
        .order_by(DeliveryRow.seq)
        .limit(limit)
    )
    if retries_only:
        pending = pending.where(DeliveryRow.retry_attempts > 0)
    if dialect == "sqlite":
        return _ClaimStatements(
            pick=sa.update(DeliveryRow)
            .where(DeliveryRow.id.in_(pending.with_only_columns(DeliveryRow.id)))
            .values(**marks)
            .returning(*_CLAIM_COLUMNS),
            mark=None,
            fetch=None,
        )
    # ids only: the claim index covers the query, so the planner cannot prefer a scan in seq
    # order that wades through every row already sent
    pick = pending.with_only_columns(DeliveryRow.id).with_for_update(skip_locked=True)
    mark = (
        sa.update(DeliveryRow)
        .where(DeliveryRow.id.in_(sa.bindparam("c_ids", expanding=True)))
        .values(**marks)
    )
    if dialect == "postgresql":  # marks and returns the rows in one statement
        return _ClaimStatements(pick=pick, mark=mark.returning(*_CLAIM_COLUMNS), fetch=None)
    fetch = sa.select(*_CLAIM_COLUMNS).where(
        DeliveryRow.id.in_(sa.bindparam("c_ids", expanding=True))
    )
    return _ClaimStatements(pick=pick, mark=mark, fetch=fetch)


def claim(
    engine: sa.Engine,
    run: RunRecord,
    pass_no: int,
    worker_id: str,
    limit: int,
    *,
    now: datetime | None = None,
    retries_only: bool = False,
) -> list[ClaimedDelivery]:
    """Take up to `limit` pending deliveries of the run, in seq order, and mark them `sending`.

    A delivery waiting for a retry is claimable only from its `not_before` time on.
    `retries_only` takes only deliveries whose retry series has begun (a relay that looks
    down gets no fresh deliveries until it answers again).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    now = utc_now() if now is None else now
    sql = _claim_statements(engine.dialect.name, limit, retries_only)
    params: dict[str, Any] = {
        "c_run": run.pk,
        "c_now": now,
        "c_worker": worker_id,
        "c_pass": pass_no,
    }
    if sql.mark is None:
        with engine.begin() as conn:
            rows: Sequence[AnyRow] = conn.execute(sql.pick, params).all()
    else:
        # READ COMMITTED: MariaDB's default REPEATABLE READ would add gap locks to the range
        with (
            engine.connect().execution_options(isolation_level="READ COMMITTED") as conn,
            conn.begin(),
        ):
            ids = conn.execute(sql.pick, params).scalars().all()
            if not ids:
                return []
            params["c_ids"] = ids
            if sql.fetch is None:
                rows = conn.execute(sql.mark, params).all()
            else:
                conn.execute(sql.mark, params)
                rows = conn.execute(sql.fetch, params).all()
    # RETURNING order is unspecified
    return [_claimed(row, run, worker_id, pass_no) for row in sorted(rows, key=_by_seq)]


def _by_seq(row: AnyRow) -> int:
    return int(row.seq)


@lru_cache(maxsize=8)
def _record_statement(dialect: str) -> sa.Update:
    """The per-result UPDATE of `record`, built once (see `_claim_statements`)."""
    return (
        sa.update(DeliveryRow)
        .where(
            DeliveryRow.id == sa.bindparam("b_id"),
            DeliveryRow.status == DeliveryStatus.SENDING,
            DeliveryRow.claimed_by == sa.bindparam("b_worker"),
        )
        .values(
            status=sa.bindparam("b_status"),
            attempts=DeliveryRow.attempts + sa.bindparam("b_attempts", type_=sa.Integer()),
            last_smtp_code=sa.bindparam("b_code"),
            last_error=sa.bindparam("b_text"),
            sent_at=sa.bindparam("b_sent_at"),
            possible_duplicate=DeliveryRow.possible_duplicate
            + sa.bindparam("b_duplicate", type_=sa.Integer()),
            outcome_unknown=sa.bindparam("b_unknown"),
            not_before=sa.bindparam("b_not_before"),
            retry_attempts=sa.bindparam("b_retry", type_=sa.Integer()),
            # a waiting delivery belongs to nobody: any sender may take it when it is due
            claimed_by=sa.bindparam("b_owner"),
        )
    )


# PostgreSQL: the whole batch in one statement over arrays, instead of one UPDATE per result
# (an executemany is still a statement per row for the server to parse, plan and run: with
# several senders on two cores the server's CPU per message competes with theirs). Same guard,
# same values as `_record_statement`; timestamps are naive UTC like `UtcDateTime` stores them.
_RECORD_PG = sa.text(
    """
    UPDATE swmail_deliveries AS d SET
        status = v.status,
        attempts = d.attempts + v.attempts,
        last_smtp_code = v.code,
        last_error = v.text,
        sent_at = v.sent_at,
        possible_duplicate = d.possible_duplicate + v.duplicate,
        outcome_unknown = v.unknown,
        not_before = v.not_before,
        retry_attempts = v.retry,
        claimed_by = v.owner
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:workers AS text[]), CAST(:statuses AS text[]),
        CAST(:attempts AS integer[]), CAST(:codes AS integer[]), CAST(:texts AS text[]),
        CAST(:sent_at AS timestamp[]), CAST(:duplicates AS integer[]),
        CAST(:unknown AS boolean[]), CAST(:not_before AS timestamp[]),
        CAST(:retry AS integer[]), CAST(:owners AS text[])
    ) AS v(id, worker, status, attempts, code, text, sent_at, duplicate, unknown, not_before,
           retry, owner)
    WHERE d.id = v.id AND d.status = 'sending' AND d.claimed_by = v.worker
    """
)


def _naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _record_pg(conn: sa.Connection, params: list[dict[str, Any]]) -> int:
    columns = {
        "ids": "b_id",
        "workers": "b_worker",
        "statuses": "b_status",
        "attempts": "b_attempts",
        "codes": "b_code",
        "texts": "b_text",
        "sent_at": "b_sent_at",
        "duplicates": "b_duplicate",
        "unknown": "b_unknown",
        "not_before": "b_not_before",
        "retry": "b_retry",
        "owners": "b_owner",
    }
    arrays: dict[str, list[Any]] = {name: [p[key] for p in params] for name, key in columns.items()}
    arrays["statuses"] = [str(status.value) for status in arrays["statuses"]]
    arrays["sent_at"] = [_naive_utc(t) for t in arrays["sent_at"]]
    arrays["not_before"] = [_naive_utc(t) for t in arrays["not_before"]]
    return conn.execute(_RECORD_PG, arrays).rowcount


def record(
    engine: sa.Engine, results: Sequence[DeliveryResult], *, now: datetime | None = None
) -> int:
    """Commit a batch of confirmed results; returns how many deliveries were updated.

    A result that `waits` puts its delivery back in the queue (`pending` until `not_before`).

    Call it as soon as the server confirms (§7: at most 50 ms of confirmations may be lost), and
    give each sender process its own `worker_id` in `claim`, since the guard below relies on it.
    A result without `sent_at` that is `sent` is stamped `now`.

    Only a delivery still `sending` and claimed by the result's worker is updated: one that a new
    pass reset (its sender was presumed dead) keeps its newer state. Hard bounces join the
    ledger's suppression list as `hard_bounce` (§7) whatever the guard says: the server's
    verdict on the address stands.
    """
    if not results:
        return 0
    now = utc_now() if now is None else now
    params = [
        {
            "b_id": r.claim.delivery_id,
            "b_worker": r.claim.claimed_by,
            "b_status": r.status,
            "b_attempts": r.attempts,
            "b_code": r.smtp_code,
            "b_text": r.smtp_text,
            "b_sent_at": r.sent_at or (now if r.status is DeliveryStatus.SENT else None),
            "b_duplicate": int(r.possible_duplicate),
            "b_unknown": r.outcome_unknown,
            "b_not_before": r.not_before,
            "b_retry": r.retry_attempts,
            "b_owner": None if r.waits else r.claim.claimed_by,
        }
        # in id order, the order a pass's reset locks rows in: no lock-order deadlock with it
        for r in sorted(results, key=lambda r: r.claim.delivery_id)
    ]
    suppressions: dict[str, dict[str, Any]] = {}
    for r in results:
        for address in r.hard_bounces:
            key = dedupe_key(address)  # §4: the form suppressions compare
            if key is None:
                continue
            suppressions.setdefault(
                key,
                {
                    "email": key,
                    "reason": SuppressionReason.HARD_BOUNCE,
                    "created_at": now,
                    "run_id": r.claim.run_id,
                    "smtp_code": r.smtp_code,
                    "smtp_text": r.smtp_text,
                },
            )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            updated = _record_pg(conn, params)
        else:
            updated = conn.execute(_record_statement(conn.dialect.name), params).rowcount
        if suppressions:
            conn.execute(suppression_insert(conn.dialect), list(suppressions.values()))
    return updated


def release(engine: sa.Engine, claims: Sequence[ClaimedDelivery]) -> int:
    """Give claimed deliveries back unsent (a sender stopping early); they stay in the pass."""
    if not claims:
        return 0
    with engine.begin() as conn:
        return conn.execute(
            sa.update(DeliveryRow)
            .where(
                DeliveryRow.id == sa.bindparam("b_id"),
                DeliveryRow.status == DeliveryStatus.SENDING,
                DeliveryRow.claimed_by == sa.bindparam("b_worker"),
            )
            .values(status=DeliveryStatus.PENDING, claimed_by=None, claimed_at=None),
            [{"b_id": c.delivery_id, "b_worker": c.claimed_by} for c in claims],
        ).rowcount


@dataclass(frozen=True, slots=True)
class QueueState:
    """What is left in a run's queue for one sender, when it found nothing to claim.

    `pending`: deliveries not yet claimable (waiting for their `not_before`, or locked by
    another sender's claim in progress); `next_due`: the earliest `not_before` among them;
    `others_sending`: deliveries other senders hold as `sending`.
    """

    pending: int
    next_due: datetime | None
    others_sending: int


def queue_state(engine: sa.Engine, run: RunRecord, worker_id: str) -> QueueState:
    """The queue as one sender sees it: whether anything may still come its way."""
    with engine.connect() as conn:
        pending, next_due = conn.execute(
            sa.select(sa.func.count(), sa.func.min(DeliveryRow.not_before)).where(
                DeliveryRow.run_pk == run.pk, DeliveryRow.status == DeliveryStatus.PENDING
            )
        ).one()
        others = conn.execute(
            sa.select(sa.func.count()).where(
                DeliveryRow.run_pk == run.pk,
                DeliveryRow.status == DeliveryStatus.SENDING,
                sa.or_(DeliveryRow.claimed_by.is_(None), DeliveryRow.claimed_by != worker_id),
            )
        ).scalar_one()
    return QueueState(int(pending), next_due, int(others))
