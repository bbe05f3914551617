"""Alembic environment of the ledger, run only through `jobs.ledger.migrate` (never online/offline
from an alembic.ini): the caller hands over an open connection, so the migration runs on exactly
the engine the job uses, with its URL rewriting and pragmas.
"""

from __future__ import annotations

from alembic import context

from jobs.ledger.migrate import VERSION_TABLE, include_name
from jobs.ledger.models import LedgerBase


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the ledger migrations through jobs.ledger.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=LedgerBase.metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        compare_type=True,
        compare_server_default=True,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
