"""The nightly job's tables: approvals of run keys and occurrences found expired (SPEC §9).

Revision ID: 0003_nightly
Revises: 0002_delivery_queue
Create Date: 2026-11-29

Types are spelled out here (as in 0001): a migration is a frozen snapshot of the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003_nightly"
down_revision: str | Sequence[str] | None = "0002_delivery_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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


def upgrade() -> None:
    op.create_table(
        "swmail_approvals",
        sa.Column("campaign_id", _id(128), nullable=False),
        sa.Column("run_key", _id(128), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("parts", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("approved_at", _timestamp(), nullable=False),
        sa.Column("approved_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "run_key", name=op.f("pk_swmail_approvals")),
    )
    op.create_table(
        "swmail_expired_occurrences",
        sa.Column("campaign_id", _id(128), nullable=False),
        sa.Column("run_key", _id(128), nullable=False),
        sa.Column("occurrence_at", _timestamp(), nullable=False),
        sa.Column("recorded_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id", "run_key", name=op.f("pk_swmail_expired_occurrences")
        ),
    )


def downgrade() -> None:
    op.drop_table("swmail_expired_occurrences")
    op.drop_table("swmail_approvals")
