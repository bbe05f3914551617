"""Bulk inserts on each driver's fast path: a run's frozen rows, and `db import`'s COPY (issue 10).

The first `run` freezes every audit row, delivery and warning of a resolution: three million
rows at a million customers. Through SQLAlchemy Core each row is a dict whose every value goes
through the column type's bind processing, which cost more CPU than resolving the campaign.
Here rows are plain tuples in the table's column order, handed to the driver as they are:

- PostgreSQL: COPY (psycopg 3), the rows streamed into the server as they come;
- SQLite: one prepared statement run by `executemany` over the row iterator itself, so the
  statement is compiled once and no chunk is ever held;
- MariaDB: PyMySQL's `executemany`, which rewrites each chunk into multi-row INSERTs of up
  to 1 MB.

All three write inside the caller's transaction (the SQLAlchemy connection's own), so the
freeze stays all or nothing. Values must already be what the columns store: enumeration
members of `StrEnum` (every driver writes their string), ints, bools, strings, None; no
dates, which would need the column type's conversion. It lives in `jobs.source`, the earlier
stage, so that the ledger's freeze and `db import` (`jobs.source.importer`, which streams its
checked rows through `copy_rows` on PostgreSQL) share one COPY path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import sqlalchemy as sa

__all__ = ["CHUNK_ROWS", "copy_rows", "insert_rows"]

CHUNK_ROWS = 5_000  # MariaDB: rows per executemany (PyMySQL splits them into ~1 MB statements)


def _quoted(conn: sa.Connection, table: sa.Table, columns: Sequence[str]) -> tuple[str, str]:
    quote = conn.dialect.identifier_preparer.quote
    for name in columns:
        if name not in table.c:  # a typo must fail here, not as a driver error mid-freeze
            raise KeyError(f"{table.name} has no column {name!r}")
    return quote(table.name), ", ".join(quote(c) for c in columns)


def copy_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Any]
) -> int:
    """PostgreSQL: COPY `rows` (tuples in the order of `columns`) in `conn`'s transaction."""
    name, names = _quoted(conn, table, columns)
    # The driver connection under this SQLAlchemy connection: COPY joins its transaction.
    raw: Any = conn.connection.driver_connection
    count = 0
    with raw.cursor() as cursor, cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
            count += 1
    return count


class _Counted:
    """Counts the rows an iterator yields (sqlite3's `executemany` consumes it in C)."""

    __slots__ = ("count", "rows")

    def __init__(self, rows: Iterable[Any]) -> None:
        self.rows = iter(rows)
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        row = next(self.rows)
        self.count += 1
        return row


def _executemany(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Any]
) -> int:
    name, names = _quoted(conn, table, columns)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {name} ({names}) VALUES ({', '.join(mark for _ in columns)})"
    raw: Any = conn.connection.driver_connection
    cursor = raw.cursor()
    try:
        if conn.dialect.name == "sqlite":
            # The whole iterator in one call: compiled once, stepped row by row in C.
            counted = _Counted(rows)
            cursor.executemany(sql, counted)
            return counted.count
        count = 0
        iterator = iter(rows)
        while chunk := list(islice(iterator, CHUNK_ROWS)):
            cursor.executemany(sql, chunk)
            count += len(chunk)
        return count
    finally:
        cursor.close()


def insert_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Any]
) -> int:
    """Insert `rows` (tuples in the order of `columns`) in `conn`'s transaction; how many.

    `rows` is consumed lazily and never held whole (at most one chunk on MariaDB).
    """
    if conn.dialect.name == "postgresql":
        return copy_rows(conn, table, columns, rows)
    return _executemany(conn, table, columns, rows)
