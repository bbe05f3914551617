"""The ledger's tables (SPEC §7): runs, their frozen resolution, delivery state, suppressions.

The ledger may live in another database than the source data (`database.ledger_url`), so it has
its own metadata, and every table carries the `swmail_` prefix because that database may be a
production one shared with other applications. The schema is owned by the Alembic migrations in
`jobs/ledger/migrations`; these models must match them (a test compares the two on each database).

Enumerations are stored as plain strings (no native ENUM types, which differ per database and
need DDL to extend) holding their public spellings, so that a person querying the ledger reads the
same words as in the CSV files.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobs.ledger.values import BounceKind, DeliveryStatus
from jobs.source.engine import id_type
from resolver.model import (
    Audience,
    Decision,
    DedupeMode,
    Source,
    SuppressionReason,
    WarningCode,
)

__all__ = [
    "ENUM_LENGTH",
    "NAMING_CONVENTION",
    "ApprovalRow",
    "AuditRowRow",
    "BounceRow",
    "DeliveryRow",
    "ExpiredOccurrenceRow",
    "LedgerBase",
    "RunLockRow",
    "RunRow",
    "SuppressionRow",
    "UtcDateTime",
    "WarningRow",
    "WorkerRole",
    "WorkerRow",
    "enum_type",
]

ENUM_LENGTH = 32  # room for longer spellings later without a migration

# Deterministic constraint names: a later migration can alter them by name on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime stored as a naive UTC timestamp on every database.

    SQLite and MariaDB have no time zones and PostgreSQL's `timestamptz` returns aware values:
    one representation keeps reads identical everywhere. MariaDB gets microseconds (`DATETIME(6)`),
    which its plain `DATETIME` would drop.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the ledger stores aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def enum_type(cls: type[StrEnum]) -> sa.Enum:
    """A non-native enum column holding the members' values (their public spellings)."""
    return sa.Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=ENUM_LENGTH,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


# Every column type in one place (STYLE: `Annotated` aliases for repeated settings).
RunId = Annotated[str, mapped_column(id_type(255))]
ShortId = Annotated[str, mapped_column(id_type(128))]
Address = Annotated[str, mapped_column(id_type(320))]  # a normalized address: compared exactly
DeliveryKey = Annotated[str, mapped_column(id_type(400))]  # address, or "address|account_id"
Codes = Annotated[str, mapped_column(sa.String(255))]  # reason codes joined with ";"
FreeText = Annotated[str, mapped_column(sa.Text())]
Counter = Annotated[int, mapped_column(sa.Integer(), server_default=sa.text("0"))]
Timestamp = Annotated[datetime, mapped_column(UtcDateTime())]


class LedgerBase(DeclarativeBase):
    """Metadata of the ledger only: never mixed with the source-data tables."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        int: sa.Integer(),
        date: sa.Date(),
        datetime: UtcDateTime(),
    }


class RunRow(LedgerBase):
    """One run per (campaign, run key); the counts are those of its frozen resolution."""

    __tablename__ = "swmail_runs"

    pk: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[RunId] = mapped_column(unique=True)
    campaign_id: Mapped[ShortId]
    run_key: Mapped[ShortId]
    as_of: Mapped[date]
    dedupe: Mapped[DedupeMode] = mapped_column(enum_type(DedupeMode))
    template: Mapped[FreeText]
    created_at: Mapped[Timestamp]
    resolved_at: Mapped[Timestamp]
    finished_at: Mapped[Timestamp | None]
    candidates: Mapped[Counter]
    sends: Mapped[Counter]
    merged: Mapped[Counter]
    skips: Mapped[Counter]
    deliveries: Mapped[Counter]
    warnings: Mapped[Counter]
    coordinator: Mapped[FreeText | None]
    pass_no: Mapped[Counter]
    # the run's next free send slot, shared by its processes (§9: the rate is the run's total)
    pace_next: Mapped[Timestamp | None]


class DeliveryRow(LedgerBase):
    """One message to one address and its sending state (SPEC §7)."""

    __tablename__ = "swmail_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("run_pk", "delivery_key"),
        sa.UniqueConstraint("run_pk", "seq"),
        # claim(): the open deliveries of a run in seq order; stats(): counts by status
        sa.Index("ix_swmail_deliveries_claim", "run_pk", "status", "seq"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),  # SQLite autoincrements INTEGER only
        primary_key=True,
        autoincrement=True,
    )
    run_pk: Mapped[int] = mapped_column(sa.ForeignKey(RunRow.pk, ondelete="CASCADE"))
    seq: Mapped[int]
    delivery_key: Mapped[DeliveryKey]
    email: Mapped[Address]
    name: Mapped[FreeText]
    audience: Mapped[Audience] = mapped_column(enum_type(Audience))
    reasons: Mapped[Codes]
    # JSON list of {kind, id, name, roles, postal_code, address}; MEDIUMTEXT on MariaDB because
    # one address can cover thousands of accounts (a tax accountant's).
    accounts: Mapped[str] = mapped_column(
        sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
    )
    message_id: Mapped[FreeText]
    status: Mapped[DeliveryStatus] = mapped_column(enum_type(DeliveryStatus))
    attempts: Mapped[Counter]
    last_smtp_code: Mapped[int | None]
    last_error: Mapped[FreeText | None]
    claimed_by: Mapped[str | None] = mapped_column(sa.String(255))
    claimed_at: Mapped[Timestamp | None]
    sent_at: Mapped[Timestamp | None]
    pass_no: Mapped[Counter]
    unconfirmed: Mapped[Counter]
    possible_duplicate: Mapped[Counter]
    outcome_unknown: Mapped[bool]  # no server default: "false" is spelled differently per database
    not_before: Mapped[Timestamp | None]  # a waiting retry: not claimable before this time
    retry_attempts: Mapped[Counter]  # attempts of the current retry series (tenacity's number)
    # §10: the DSN status (`5.1.1`) of the bounce that made it `bounced`; the audit shows it as
    # last_smtp_code, which holds the relay's integer reply code and stays as the relay said it
    dsn_status: Mapped[str | None] = mapped_column(sa.String(16))


class WorkerRole(StrEnum):
    """Who owns claims in a run: the `run` coordinator, or a `worker` (SPEC §9)."""

    COORDINATOR = "coordinator"
    WORKER = "worker"


class WorkerRow(LedgerBase):
    """A claim owner of a run and its heartbeat (SPEC §9: a lease per claim owner).

    `last_seen` is renewed while the owner lives; claims of an owner silent for longer than
    `smtp.claim_lease_seconds` go back to the queue. Its counts are a ledger query over the
    deliveries it finished (`claimed_by`), never counters kept here.
    """

    __tablename__ = "swmail_workers"

    run_pk: Mapped[int] = mapped_column(
        sa.ForeignKey(RunRow.pk, ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    role: Mapped[WorkerRole] = mapped_column(enum_type(WorkerRole))
    started_at: Mapped[Timestamp]
    last_seen: Mapped[Timestamp]
    stopped_at: Mapped[Timestamp | None]


class AuditRowRow(LedgerBase):
    """One candidate's decision, frozen at the run's first resolution (SPEC §5)."""

    __tablename__ = "swmail_audit_rows"

    run_pk: Mapped[int] = mapped_column(
        sa.ForeignKey(RunRow.pk, ondelete="CASCADE"), primary_key=True
    )
    row_no: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    decision: Mapped[Decision] = mapped_column(enum_type(Decision))
    reasons: Mapped[Codes]
    audience: Mapped[Audience] = mapped_column(enum_type(Audience))
    account_id: Mapped[ShortId]
    account_name: Mapped[FreeText]
    source: Mapped[Source] = mapped_column(enum_type(Source))
    person_id: Mapped[ShortId]
    name: Mapped[FreeText]
    email: Mapped[FreeText]  # as in the source data: any length, any garbage
    delivery_email: Mapped[Address | None]
    delivery_key: Mapped[DeliveryKey | None]  # joins swmail_deliveries (run_pk, delivery_key)


class WarningRow(LedgerBase):
    """A warning of the run's resolution (SPEC §4 warnings.csv), frozen with it."""

    __tablename__ = "swmail_warnings"

    run_pk: Mapped[int] = mapped_column(
        sa.ForeignKey(RunRow.pk, ondelete="CASCADE"), primary_key=True
    )
    warning_no: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    code: Mapped[WarningCode] = mapped_column(enum_type(WarningCode))
    account_id: Mapped[ShortId]
    person_id: Mapped[ShortId]
    email: Mapped[FreeText]
    detail: Mapped[FreeText]


class SuppressionRow(LedgerBase):
    """An address the job itself suppressed (SPEC §7): kept here so a re-import cannot erase it."""

    __tablename__ = "swmail_suppressions"

    email: Mapped[Address] = mapped_column(primary_key=True)  # the dedupe key: lower-cased
    reason: Mapped[SuppressionReason] = mapped_column(enum_type(SuppressionReason))
    created_at: Mapped[Timestamp]
    run_id: Mapped[RunId | None]
    smtp_code: Mapped[int | None]
    smtp_text: Mapped[FreeText | None]
    note: Mapped[FreeText | None]  # §10: the operator's words (`suppress add --note`)


class BounceRow(LedgerBase):
    """A delivery status notification matched to a delivery (§10 `bounces import`).

    Unique per (delivery, bounce message): importing the same mailbox again adds nothing.
    """

    __tablename__ = "swmail_bounces"
    __table_args__ = (sa.UniqueConstraint("delivery_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey(DeliveryRow.id, ondelete="CASCADE"),
    )
    # the bounce's own Message-ID, or a hash of its bytes when it has none
    fingerprint: Mapped[str] = mapped_column(id_type(255))
    kind: Mapped[BounceKind] = mapped_column(enum_type(BounceKind))
    dsn_status: Mapped[str] = mapped_column(sa.String(16))
    diagnostic: Mapped[FreeText]
    matched_by: Mapped[str] = mapped_column(sa.String(16))  # message_id | verp
    imported_at: Mapped[Timestamp]


class RunLockRow(LedgerBase):
    """Who holds a run's database lock, written by the holder so a loser can name it (§7)."""

    __tablename__ = "swmail_run_locks"

    run_id: Mapped[RunId] = mapped_column(primary_key=True)
    holder: Mapped[FreeText]
    session_id: Mapped[int] = mapped_column(sa.BigInteger())  # the holder's server session
    acquired_at: Mapped[Timestamp]


class ApprovalRow(LedgerBase):
    """An operator's `approve` of one run key (SPEC §9): what was approved and the counts seen."""

    __tablename__ = "swmail_approvals"

    campaign_id: Mapped[ShortId] = mapped_column(primary_key=True)
    run_key: Mapped[ShortId] = mapped_column(primary_key=True)
    as_of: Mapped[date]
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # sha256 hex of the three parts
    parts: Mapped[FreeText]  # JSON {campaign_file, templates, message}: names what changed
    counts: Mapped[FreeText]  # JSON {audience: {decision: n}}
    approved_at: Mapped[Timestamp]
    approved_by: Mapped[FreeText]


class ExpiredOccurrenceRow(LedgerBase):
    """An occurrence `nightly` found too late to send (SPEC §9): recorded once, alerted once."""

    __tablename__ = "swmail_expired_occurrences"

    campaign_id: Mapped[ShortId] = mapped_column(primary_key=True)
    run_key: Mapped[ShortId] = mapped_column(primary_key=True)
    occurrence_at: Mapped[Timestamp]
    recorded_at: Mapped[Timestamp]
