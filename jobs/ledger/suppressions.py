"""The effective suppression list (SPEC §7, §10): the ledger's own entries plus `suppressions.csv`.

The job adds hard bounces (at RCPT time or from `bounces import`) and operators add and lift
stops with `suppress add/remove`; both live in `swmail_suppressions`, so a re-import of the source
data never erases them. The source data's own list (`suppressions.csv`) is read, never written:
lifting one of its entries means editing that file, and `remove` says so instead of pretending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from jobs.errors import InputError, NotFound
from jobs.i18n import N_, tr
from jobs.ledger.codec import utc_now
from jobs.ledger.migrate import check_ledger, ledger_exists
from jobs.ledger.models import SuppressionRow
from jobs.source.models import Suppression
from resolver.model import SuppressionReason
from resolver.normalize import normalize_email

__all__ = [
    "OPERATOR_REASONS",
    "SUPPRESSION_COLUMNS",
    "SuppressionEntry",
    "SuppressionOrigin",
    "add_suppression",
    "entries_for",
    "list_suppressions",
    "operator_key",
    "remove_suppression",
    "suppression_insert",
]

SUPPRESSION_COLUMNS = ("email", "reason", "origin", "run_id", "note", "created_at")  # §10
OPERATOR_REASONS = frozenset({SuppressionReason.MANUAL, SuppressionReason.COMPLAINT})
SOURCE_FILE = "suppressions.csv"


class SuppressionOrigin(StrEnum):
    """§10 `suppress list` column `origin`: who put the address on the list."""

    SOURCE_DATA = "source_data"
    BOUNCE = "bounce"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    """One row of `suppress list` (§10 columns, in order) plus the bounce's words, if any."""

    email: str
    reason: SuppressionReason
    origin: SuppressionOrigin
    run_id: str
    note: str
    created_at: datetime | date | None
    detail: str = ""  # a bounce's reply or DSN status and diagnostic

    def cells(self) -> tuple[str, ...]:
        created = "" if self.created_at is None else self.created_at.isoformat()
        if isinstance(self.created_at, datetime):
            created = self.created_at.isoformat(timespec="seconds")
        return (
            self.email,
            self.reason.value,
            self.origin.value,
            self.run_id,
            self.note,
            created,
        )

    def provenance(self) -> str:
        """Where the suppression came from, in words (`explain`); English, as JSON keeps it."""
        day = "" if self.created_at is None else _ON.format(day=self.created_at.isoformat()[:10])
        if self.origin is SuppressionOrigin.SOURCE_DATA:
            return _BY_SOURCE.format(file=SOURCE_FILE, reason=self.reason.value, when=day)
        if self.origin is SuppressionOrigin.BOUNCE:
            run = _IN_RUN.format(run_id=self.run_id) if self.run_id else ""
            detail = _DETAIL.format(reply=self.detail) if self.detail else ""
            return _BY_BOUNCE.format(run=run, when=day, detail=detail)
        note = _NOTE.format(text=self.note) if self.note else ""
        return _BY_OPERATOR.format(reason=self.reason.value, when=day, note=note)


# `provenance` as templates: `explain` shows it in the operator's language (jobs.i18n.localize),
# the optional phrases named so that the sentence splits back into its parts (a phrase's own
# placeholder never bears a phrase's name).
_ON = N_(" on {day}")
_IN_RUN = N_(" in run {run_id}")
_DETAIL = ": {reply}"
_NOTE = N_(", note: {text}")
_BY_SOURCE = N_("suppressed by the source data ({file}, {reason}){when}")
_BY_BOUNCE = N_("suppressed by a hard bounce{run}{when}{detail}")
_BY_OPERATOR = N_("suppressed by an operator ({reason}){when}{note}")
PROVENANCE_TEMPLATES = (_BY_SOURCE, _BY_BOUNCE, _BY_OPERATOR)
PROVENANCE_PHRASES = {"when": _ON, "run": _IN_RUN, "detail": _DETAIL, "note": _NOTE}


def _origin(reason: SuppressionReason) -> SuppressionOrigin:
    # The job itself only ever adds hard bounces; operators only manual stops and complaints.
    if reason is SuppressionReason.HARD_BOUNCE:
        return SuppressionOrigin.BOUNCE
    return SuppressionOrigin.OPERATOR


def operator_key(email: str) -> str:
    """§4 normalization of an address an operator typed: its dedupe key, or exit 2."""
    normalized = normalize_email(email)
    if normalized.key is None:
        why = "it is empty" if normalized.missing else normalized.error
        raise InputError(tr("{email!r} is not a valid e-mail address: {why}", email=email, why=why))
    return normalized.key


def suppression_insert(dialect: sa.Dialect) -> Any:
    """An INSERT that keeps the first entry for an address (duplicates are not errors)."""
    if dialect.name == "postgresql":
        return postgresql.insert(SuppressionRow).on_conflict_do_nothing(index_elements=["email"])
    if dialect.name == "sqlite":
        return sqlite.insert(SuppressionRow).on_conflict_do_nothing(index_elements=["email"])
    if dialect.name in ("mysql", "mariadb"):
        insert = mysql.insert(SuppressionRow)
        # a no-op update, not INSERT IGNORE, which would also swallow truncation errors
        return insert.on_duplicate_key_update(email=insert.table.c.email)
    raise NotImplementedError(f"the ledger does not support {dialect.name}")


def _ledger_entries(conn: sa.Connection, key: str | None) -> list[SuppressionEntry]:
    stmt = sa.select(
        SuppressionRow.email,
        SuppressionRow.reason,
        SuppressionRow.run_id,
        SuppressionRow.note,
        SuppressionRow.created_at,
        SuppressionRow.smtp_code,
        SuppressionRow.smtp_text,
    ).order_by(SuppressionRow.email)
    if key is not None:
        stmt = stmt.where(SuppressionRow.email == key)
    return [
        SuppressionEntry(
            email=row.email,
            reason=row.reason,
            origin=_origin(row.reason),
            run_id=row.run_id or "",
            note=row.note or "",
            created_at=row.created_at,
            detail=" ".join(str(p) for p in (row.smtp_code, row.smtp_text) if p),
        )
        for row in conn.execute(stmt)
    ]


def _source_entries(engine: sa.Engine, key: str | None) -> list[SuppressionEntry]:
    if not sa.inspect(engine).has_table(Suppression.__tablename__):
        return []  # no source data imported yet: nothing suppressed by it
    stmt = sa.select(Suppression.email, Suppression.reason, Suppression.created_on).order_by(
        Suppression.email
    )
    if key is not None:
        stmt = stmt.where(Suppression.email == key)
    with engine.connect() as conn:
        return [
            SuppressionEntry(
                email=row.email,
                reason=row.reason,
                origin=SuppressionOrigin.SOURCE_DATA,
                run_id="",
                note="",
                created_at=row.created_on,
            )
            for row in conn.execute(stmt)
        ]


def _ledger_rows(ledger: sa.Engine, key: str | None) -> list[SuppressionEntry]:
    if not ledger_exists(ledger):
        return []
    with ledger.connect() as conn:
        return _ledger_entries(conn, key)


def entries_for(ledger: sa.Engine, source: sa.Engine, key: str) -> list[SuppressionEntry]:
    """Every entry that suppresses the dedupe key `key`: the source data's, then the ledger's."""
    return _source_entries(source, key) + _ledger_rows(ledger, key)


def list_suppressions(ledger: sa.Engine, source: sa.Engine) -> list[SuppressionEntry]:
    """§10 `suppress list`: both lists, by address; an address on both appears twice."""
    entries = _source_entries(source, None) + _ledger_rows(ledger, None)
    order = list(SuppressionOrigin)
    return sorted(entries, key=lambda e: (e.email, order.index(e.origin)))


def add_suppression(
    ledger: sa.Engine,
    email: str,
    reason: SuppressionReason,
    note: str,
    *,
    now: datetime | None = None,
) -> tuple[SuppressionEntry, bool]:
    """Stop every future campaign to `email`; (the entry, False) when the ledger had it already.

    An existing entry is kept as it is: a hard bounce stays a hard bounce with its run, and an
    operator's first note is not overwritten by a second `add`.
    """
    if reason not in OPERATOR_REASONS:
        raise InputError(
            tr(
                "an operator adds {value}, not {reason}",
                value=" or ".join(sorted(OPERATOR_REASONS)),
                reason=reason,
            )
        )
    key = operator_key(email)
    check_ledger(ledger)
    now = utc_now() if now is None else now
    with ledger.begin() as conn:
        existing = _ledger_entries(conn, key)
        if existing:
            return existing[0], False
        conn.execute(
            suppression_insert(conn.dialect),  # a racing `add` of the same address is no error
            [
                {
                    "email": key,
                    "reason": reason,
                    "created_at": now,
                    "run_id": None,
                    "smtp_code": None,
                    "smtp_text": None,
                    "note": note or None,
                }
            ],
        )
        [entry] = _ledger_entries(conn, key)
    return entry, True


def remove_suppression(ledger: sa.Engine, source: sa.Engine, email: str) -> SuppressionEntry:
    """Lift the ledger's stop on `email`; exit 2 when only `suppressions.csv` suppresses it.

    Returns the removed entry. When the source data suppresses the address as well, the caller
    must say that it stays suppressed.
    """
    key = operator_key(email)
    check_ledger(ledger)
    with ledger.begin() as conn:
        found = _ledger_entries(conn, key)
        if found:
            conn.execute(sa.delete(SuppressionRow).where(SuppressionRow.email == key))
            return found[0]
    if _source_entries(source, key):
        raise InputError(
            tr(
                "{key} is suppressed by the source data only: remove it from {SOURCE_FILE} and "
                "run `swmail db import` again",
                key=key,
                SOURCE_FILE=SOURCE_FILE,
            )
        )
    raise NotFound(tr("{key} is not on the suppression list", key=key))
