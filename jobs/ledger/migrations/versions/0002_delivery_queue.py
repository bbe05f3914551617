"""The delivery queue: retries wait in the ledger, claims have owners with leases, a run-wide pace.

Revision ID: 0002_delivery_queue
Revises: 0001
Create Date: 2026-11-29

- `swmail_deliveries.not_before`: a delivery that must wait before its next attempt goes back
  to `pending` with this time, so a resume keeps the wait (issue 8 item 1);
  `retry_attempts`: the attempts of its current retry series (tenacity's attempt number).
- `swmail_workers`: each claim owner of a run (coordinator or `worker`) with its heartbeat; a
  claim whose owner stopped beating for a lease is taken back (SPEC §9).
- `swmail_runs.pace_next`: the next free send slot of the run, shared by all its processes, so
  that `smtp.rate_per_second` is the run's total (SPEC §9).

Types are spelled out here, as in 0001: a migration is a frozen snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002_delivery_queue"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> sa.types.TypeEngine[datetime]:
    """Naive UTC; microseconds on MariaDB too (`models.UtcDateTime`)."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.add_column("swmail_deliveries", sa.Column("not_before", _timestamp(), nullable=True))
    op.add_column(
        "swmail_deliveries",
        sa.Column("retry_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("swmail_runs", sa.Column("pace_next", _timestamp(), nullable=True))
    op.create_table(
        "swmail_workers",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("last_seen", _timestamp(), nullable=False),
        sa.Column("stopped_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_pk"],
            ["swmail_runs.pk"],
            name=op.f("fk_swmail_workers_run_pk"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_pk", "worker_id", name=op.f("pk_swmail_workers")),
    )


def downgrade() -> None:
    op.drop_table("swmail_workers")
    with op.batch_alter_table("swmail_runs") as runs:
        runs.drop_column("pace_next")
    with op.batch_alter_table("swmail_deliveries") as deliveries:
        deliveries.drop_column("retry_attempts")
        deliveries.drop_column("not_before")
