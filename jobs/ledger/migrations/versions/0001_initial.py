"""The initial ledger schema: runs, deliveries, audit rows, warnings, suppressions, run locks.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Types are spelled out here instead of imported from the models: a migration is a frozen
snapshot, and later edits to the models must not change what an old revision creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM = sa.String(32)  # non-native enums: the members' values as plain strings


def _id(length: int) -> sa.types.TypeEngine[str]:
    """A key compared case-sensitively in code-point order (as `jobs.source.engine.id_type`)."""
    return (
        sa.String(length)
        .with_variant(sa.String(length, collation="C"), "postgresql")
        .with_variant(sa.String(length, collation="utf8mb4_bin"), "mysql", "mariadb")
    )


def _timestamp() -> sa.types.TypeEngine[datetime]:
    """Naive UTC; microseconds on MariaDB too (`models.UtcDateTime`)."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False)


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_pk"], ["swmail_runs.pk"], name=op.f(f"fk_{table}_run_pk"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "swmail_runs",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", _id(255), nullable=False),
        sa.Column("campaign_id", _id(128), nullable=False),
        sa.Column("run_key", _id(128), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("dedupe", ENUM, nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("resolved_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        _counter("candidates"),
        _counter("sends"),
        _counter("merged"),
        _counter("skips"),
        _counter("deliveries"),
        _counter("warnings"),
        sa.Column("coordinator", sa.Text(), nullable=True),
        _counter("pass_no"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_swmail_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_swmail_runs_run_id")),
    )
    op.create_table(
        "swmail_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("delivery_key", _id(400), nullable=False),
        sa.Column("email", _id(320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("audience", ENUM, nullable=False),
        sa.Column("reasons", sa.String(255), nullable=False),
        sa.Column(
            "accounts",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        _counter("attempts"),
        sa.Column("last_smtp_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("claimed_at", _timestamp(), nullable=True),
        sa.Column("sent_at", _timestamp(), nullable=True),
        _counter("pass_no"),
        _counter("unconfirmed"),
        _counter("possible_duplicate"),
        sa.Column("outcome_unknown", sa.Boolean(), nullable=False),
        _run_fk("swmail_deliveries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_swmail_deliveries")),
        sa.UniqueConstraint(
            "run_pk", "delivery_key", name=op.f("uq_swmail_deliveries_run_pk_delivery_key")
        ),
        sa.UniqueConstraint("run_pk", "seq", name=op.f("uq_swmail_deliveries_run_pk_seq")),
    )
    op.create_index("ix_swmail_deliveries_claim", "swmail_deliveries", ["run_pk", "status", "seq"])
    op.create_table(
        "swmail_audit_rows",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("decision", ENUM, nullable=False),
        sa.Column("reasons", sa.String(255), nullable=False),
        sa.Column("audience", ENUM, nullable=False),
        sa.Column("account_id", _id(128), nullable=False),
        sa.Column("account_name", sa.Text(), nullable=False),
        sa.Column("source", ENUM, nullable=False),
        sa.Column("person_id", _id(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("delivery_email", _id(320), nullable=True),
        sa.Column("delivery_key", _id(400), nullable=True),
        _run_fk("swmail_audit_rows"),
        sa.PrimaryKeyConstraint("run_pk", "row_no", name=op.f("pk_swmail_audit_rows")),
    )
    op.create_table(
        "swmail_warnings",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("warning_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("code", ENUM, nullable=False),
        sa.Column("account_id", _id(128), nullable=False),
        sa.Column("person_id", _id(128), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _run_fk("swmail_warnings"),
        sa.PrimaryKeyConstraint("run_pk", "warning_no", name=op.f("pk_swmail_warnings")),
    )
    op.create_table(
        "swmail_suppressions",
        sa.Column("email", _id(320), nullable=False),
        sa.Column("reason", ENUM, nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("run_id", _id(255), nullable=True),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("smtp_text", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_swmail_suppressions")),
    )
    op.create_table(
        "swmail_run_locks",
        sa.Column("run_id", _id(255), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_swmail_run_locks")),
    )


def downgrade() -> None:
    op.drop_table("swmail_run_locks")
    op.drop_table("swmail_suppressions")
    op.drop_table("swmail_warnings")
    op.drop_table("swmail_audit_rows")
    op.drop_index("ix_swmail_deliveries_claim", table_name="swmail_deliveries")
    op.drop_table("swmail_deliveries")
    op.drop_table("swmail_runs")
