"""Schema management of the ledger (SPEC §7): Alembic migrations, run from code.

A production ledger is upgraded in place by the job itself (`db init`, or any command that opens
the ledger), so there is no alembic.ini to ship or to point at the wrong database: the Alembic
configuration is built here and runs on the caller's engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from jobs.errors import ConfigError
from jobs.i18n import tr
from jobs.ledger.models import LedgerBase

__all__ = [
    "MIGRATIONS",
    "VERSION_TABLE",
    "check_ledger",
    "current_revision",
    "downgrade",
    "head_revision",
    "include_name",
    "ledger_exists",
    "schema_diff",
    "upgrade",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Prefixed like the tables: the ledger may share a database with another Alembic-managed app.
VERSION_TABLE = "swmail_alembic_version"
TABLE_PREFIX = "swmail_"


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Only the ledger's tables: the same database may hold the source data or other apps."""
    if type_ == "table":
        return name is not None and name.startswith(TABLE_PREFIX) and name != VERSION_TABLE
    return True


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    # ConfigParser interpolation: a `%` in the install path must be doubled
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the ledger's tables to `revision` (default: the newest); a no-op when already there."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Step the ledger back to `revision` ("base" drops every ledger table and its data)."""
    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the ledger database is at; None when it has never been migrated."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def schema_diff(engine: sa.Engine) -> list[Any]:
    """Differences between the database and the models (Alembic autogenerate); [] when in sync."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": VERSION_TABLE,
                "include_name": include_name,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return list(compare_metadata(context, LedgerBase.metadata))


def ledger_exists(engine: sa.Engine) -> bool:
    return current_revision(engine) is not None


def check_ledger(engine: sa.Engine) -> None:
    """Refuse to run on a ledger that is missing or at another schema version (exit 2)."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        if current is None:
            message = tr(
                "the ledger database has no ledger tables; this version needs {head}: run"
                " `swmail db init`",
                head=head,
            )
        else:
            message = tr(
                "the ledger database is at schema {current}; this version needs {head}: run"
                " `swmail db init`",
                current=current,
                head=head,
            )
        raise ConfigError(message)
