"""Bounces (SPEC §10): matched delivery status notifications, DSN status, operators' notes.

Revision ID: 0004_bounces
Revises: 0002_delivery_queue
Create Date: 2026-11-29

- `swmail_bounces`: one row per (delivery, bounce message), so re-importing a mailbox adds
  nothing; hard (5.x.x) and soft (4.x.x) alike.
- `swmail_deliveries.dsn_status`: the DSN status (`5.1.1`) of a `bounced` delivery.
- `swmail_suppressions.note`: what an operator wrote with `suppress add --note`.

Types are spelled out as in 0001: a migration is a frozen snapshot of the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004_bounces"
down_revision: str | Sequence[str] | None = "0003_nightly"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(length: int) -> sa.types.TypeEngine[str]:
    return (
        sa.String(length)
        .with_variant(sa.String(length, collation="C"), "postgresql")
        .with_variant(sa.String(length, collation="utf8mb4_bin"), "mysql", "mariadb")
    )


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("swmail_deliveries") as batch:
        batch.add_column(sa.Column("dsn_status", sa.String(16), nullable=True))
    with op.batch_alter_table("swmail_suppressions") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    op.create_table(
        "swmail_bounces",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", _big_id(), nullable=False),
        sa.Column("fingerprint", _id(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dsn_status", sa.String(16), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("matched_by", sa.String(16), nullable=False),
        sa.Column(
            "imported_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["swmail_deliveries.id"],
            name=op.f("fk_swmail_bounces_delivery_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_swmail_bounces")),
        sa.UniqueConstraint(
            "delivery_id", "fingerprint", name=op.f("uq_swmail_bounces_delivery_id_fingerprint")
        ),
    )


def downgrade() -> None:
    op.drop_table("swmail_bounces")
    with op.batch_alter_table("swmail_suppressions") as batch:
        batch.drop_column("note")
    with op.batch_alter_table("swmail_deliveries") as batch:
        batch.drop_column("dsn_status")
