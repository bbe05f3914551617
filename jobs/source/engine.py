"""Engines for the supported databases (SPEC §8 `[database] url`): SQLite, PostgreSQL, MariaDB.

One function turns the configured URL into a working engine, so that every command gets the same
driver, character set and SQLite pragmas, and a wrong URL or a server that is down is one clear
line (exit 2) before any work starts instead of a driver traceback halfway through a run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from jobs.config.secrets import MASK, mask_secrets, url_password
from jobs.errors import ConfigError, MailerError
from jobs.files import create_private_file
from jobs.i18n import tr

__all__ = [
    "ID",
    "MissingDatabase",
    "export_snapshot",
    "id_type",
    "joined_snapshot",
    "make_engine",
    "shown_url",
    "snapshot",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+-[0-9A-Fa-f]+(?:-[0-9]+)?")  # pg_export_snapshot()
CONNECT_TIMEOUT_SECONDS = 10

# Drivers we ship (setup.cfg): plain scheme names are rewritten to them, so an operator can
# write `postgresql://…` or `mariadb://…` as in every other tool.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
}


def id_type(length: int = 64) -> sa.types.TypeEngine[str]:
    """A string key that compares case-sensitively in code-point order on every database.

    The resolver merges streams ordered by id and compares ids with Python `str` order, so the
    database must sort the same way: collation "C" on PostgreSQL (byte order of UTF-8 = code-point
    order), `utf8mb4_bin` on MariaDB (whose default collation would fold case and accents), and
    SQLite's default BINARY collation.
    """
    return (
        sa.String(length)
        .with_variant(sa.String(length, collation="C"), "postgresql")
        .with_variant(sa.String(length, collation="utf8mb4_bin"), "mysql", "mariadb")
    )


ID: sa.types.TypeEngine[str] = id_type()
"""The column type of corp_id, user_id, partner_id, contact_id (SPEC §3 keys)."""


def shown_url(url: URL | sa.Engine) -> str:
    """A database URL as every message and log line shows it: the password as `***`."""
    return (url.url if isinstance(url, sa.Engine) else url).render_as_string(hide_password=True)


def _normalize_url(raw: str) -> URL:
    shown = mask_secrets(raw)
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            tr(
                "database URL {shown!r} is not a valid URL (e.g. postgresql://user@host:5432/db)",
                shown=shown,
            )
        ) from None
    except ValueError:  # SQLAlchemy converts the port with int()
        raise ConfigError(
            tr("database URL {shown!r}: the port is not a number", shown=shown)
        ) from None
    written = url_password(raw)
    if written is not None and unquote(written) != url.password:
        # `user:p@ss@host`: parsers disagree where the host starts, and drivers then quote the
        # rest of the password as a host name in their errors
        raise ConfigError(
            tr(
                "database URL {shown!r}: the password holds '@' or '/'; percent-encode it (e.g. "
                "%40 for '@')",
                shown=shown,
            )
        )
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ConfigError(
            tr("database URL {shown!r}: port {port} is outside 1-65535", shown=shown, port=url.port)
        )
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigError(
            tr(
                "database URL scheme {drivername!r} is not supported; use sqlite:///FILE, "
                "postgresql://… or mariadb://…",
                drivername=url.drivername,
            )
        )
    url = url.set(drivername=driver)
    if driver == "mysql+pymysql":
        # utf8mb4: MariaDB's legacy "utf8" cannot store characters outside the BMP.
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


class MissingDatabase(ConfigError):
    """A read-only command was pointed at a SQLite file that does not exist (it creates none)."""


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # SQLite enforces foreign keys only when asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL: readers (dry-run, status) never block the writer of a run, and vice versa.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _prepare_sqlite_file(file: Path, shown: str, *, create: bool) -> None:
    if not create:
        # Read-only commands (status, resolve, …) must not leave an empty database behind a
        # mistyped URL: SQLite would create the file (and we the folder) on first connect.
        if not file.exists():
            raise MissingDatabase(
                tr(
                    "the database {shown} does not exist; create it with `swmail db init` (or "
                    "point database.url at it)",
                    shown=shown,
                )
            )
        return
    try:
        # Created 0600 in 0700 folders by us: SQLite would create it 0644 under the umask, and
        # it gives its -wal/-shm/-journal files the database file's mode.
        create_private_file(file)
    except ConfigError:
        raise
    except MailerError as exc:
        raise ConfigError(
            tr(
                "cannot create the SQLite database {shown}: {message}",
                shown=shown,
                message=exc.message,
            )
        ) from None


def make_engine(url: str, *, create: bool = True) -> sa.Engine:
    """An engine for `url`, checked by connecting once; bad URL or dead server: ConfigError.

    `create=False` (read-only commands): a SQLite file that does not exist is `MissingDatabase`
    (exit 2) instead of being created with its folder.
    """
    parsed = _normalize_url(url)
    shown = shown_url(parsed)
    kwargs: dict[str, Any] = {}
    if parsed.drivername == "sqlite":
        file = _sqlite_file(parsed)
        if file is not None:
            _prepare_sqlite_file(file, shown, create=create)
    else:
        # A nightly job outlives idle server-side timeouts; test a pooled connection before use.
        kwargs["pool_pre_ping"] = True
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError, TypeError, ValueError) as exc:
        reason = _scrubbed(_first_line(exc), parsed)
        raise ConfigError(
            tr("database URL {shown} is not usable: {reason}", shown=shown, reason=reason)
        ) from None
    if parsed.drivername == "sqlite":
        sa.event.listen(engine, "connect", _on_sqlite_connect)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        reason = _scrubbed(_first_line(exc.orig or exc), parsed)
        raise ConfigError(
            tr("cannot connect to the database {shown}: {reason}", shown=shown, reason=reason)
        ) from None
    return engine


@contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read transaction that sees one consistent state of the data across many queries.

    The loader reads in pages; without a snapshot a `db import` committed between two pages
    would mix two data sets in one resolution.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # pysqlite opens a transaction only before writes; an explicit BEGIN pins the WAL
            # snapshot for the reads that follow.
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        try:
            yield conn
        finally:
            conn.rollback()


def export_snapshot(conn: sa.Connection) -> str:
    """The id of `conn`'s PostgreSQL snapshot, for `joined_snapshot` in other processes.

    It stays valid while `conn`'s transaction is open.
    """
    exported: str = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
    return exported


@contextmanager
def joined_snapshot(engine: sa.Engine, snapshot_id: str) -> Iterator[sa.Connection]:
    """A read transaction on PostgreSQL that sees the exported snapshot `snapshot_id`.

    The processes of a parallel resolution read one state of the data, as one process would.
    """
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        # SET takes no bound parameter: the id is checked to be the server's own form.
        if not _SNAPSHOT_ID.fullmatch(snapshot_id):
            raise ValueError(f"not a PostgreSQL snapshot id: {snapshot_id!r}")
        try:
            # Must be the transaction's first statement.
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
            yield conn
        finally:
            conn.rollback()


def _scrubbed(text: str, url: URL) -> str:
    """A driver's message without the password, should the driver have quoted it."""
    password = url.password
    if isinstance(password, str) and password:
        text = text.replace(password, MASK)
    return mask_secrets(text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
