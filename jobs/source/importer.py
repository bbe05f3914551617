"""`db import DIR`: load the CSV files of SPEC §3 into the source tables, all or nothing.

Every row is validated in Python (references checked against the key sets of the files read
before it), so a bad row is reported with its file, physical line and column in words rather
than as a database error, and identically on SQLite, PostgreSQL and MariaDB.

Each file is read once: rows are validated and written in the same pass, inside the one
transaction that first deleted the old data set, so the first bad row rolls everything back and
leaves the database exactly as it was. Writing uses each driver's bulk path (issue 10): COPY on
PostgreSQL (psycopg 3), a prepared multi-row INSERT run by `executemany` on SQLite, and
`LOAD DATA LOCAL INFILE` of a temporary file on MariaDB (multi-row INSERTs, which PyMySQL
makes of `executemany`, when the server does not allow it).

Fast path (issue 10): a file without NUL bytes is checked by a row function compiled for its
header, and duplicate keys are left to the primary key except where the keys are kept anyway;
anything it does not accept sends that file through the exact, cell-by-cell checks, which word
the first error (the line-by-line decoder names the line and column of a bad byte). The
database's own foreign-key checks and secondary indexes are out of the load and restored in the
same transaction (`_bulk_session`, `_defer_constraints`).

The column rules are derived from the table definitions of `jobs.source.models`, so the CSV
format, the validation and the schema cannot drift apart.
"""

from __future__ import annotations

import codecs
import csv
import enum
import re
import tempfile
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import chain, islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jobs.errors import InputError
from jobs.i18n import _, tr
from jobs.source.bulk import copy_rows
from jobs.source.engine import CONNECT_TIMEOUT_SECONDS
from jobs.source.models import Suppression, init_source_schema, source_tables
from resolver.normalize import dedupe_key

__all__ = ["CHUNK_ROWS", "REQUIRED_FILES", "ImportReport", "import_dir"]

CHUNK_ROWS = 5_000
REQUIRED_FILES = frozenset({"customers.csv"})  # §3: other files may be absent

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BOOLEANS = {"0": False, "1": True}
# Ids sort in code-point order on every database only without spaces and controls: MariaDB's
# utf8mb4_bin pads with spaces when it compares (jobs.source.engine.id_type). `\s` is str.isspace().
_NOT_IN_ID = re.compile(r"[\s\x00-\x20\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one import loaded: rows per table (parents first) and the files that were absent."""

    directory: Path
    counts: Mapping[str, int]
    absent: tuple[str, ...]
    elapsed_seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())


class _CellError(ValueError):
    """A cell that does not convert; the caller adds file, line and column."""


Converter = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class _FileSpec:
    """How one CSV file maps onto its table."""

    table: sa.Table
    columns: tuple[str, ...]
    converters: Mapping[str, Converter]
    key: tuple[str, ...]
    references: Mapping[str, str] = field(default_factory=dict)  # column -> referenced table

    @property
    def file_name(self) -> str:
        return f"{self.table.name}.csv"


# --- cell converters --------------------------------------------------------------------------


def _enum_converter(enum_class: type[enum.Enum], nullable: bool) -> Converter:
    # Stored by value as plain text (jobs.source.models): the value is what every driver writes.
    members = {str(m.value): str(m.value) for m in enum_class}
    allowed = ", ".join(members)

    def convert(text: str) -> Any:
        if text == "" and nullable:
            return None
        try:
            return members[text]
        except KeyError:
            # §3: enumerations are lower-case and exact ("Direct" and " direct" are errors).
            raise _CellError(
                tr("unknown value {text!r}; expected one of: {allowed}", text=text, allowed=allowed)
            ) from None

    return convert


def _date_converter(nullable: bool) -> Converter:
    def convert(text: str) -> str | None:
        if text == "" and nullable:
            return None
        if _DATE.fullmatch(text):
            try:
                date.fromisoformat(text)
            except ValueError:
                pass
            else:
                # The checked text itself: SQLite stores dates as this very text (as SQLAlchemy
                # does), and PostgreSQL's COPY and MariaDB parse it.
                return text
        raise _CellError(tr("{text!r} is not a date in the form YYYY-MM-DD", text=text))

    return convert


def _bool_converter(text: str) -> bool:
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise _CellError(tr("{text!r} is not a boolean; expected 0 or 1", text=text)) from None


def _text_converter(length: int | None, nullable: bool, is_id: bool) -> Converter:
    def convert(text: str) -> str | None:
        if text == "":
            if nullable:
                return None
            raise _CellError(_("is empty; a value is required"))
        if length is not None and len(text) > length:
            raise _CellError(
                tr(
                    "is {n_text} characters long; at most {length} are allowed",
                    n_text=len(text),
                    length=length,
                )
            )
        if is_id and _NOT_IN_ID.search(text):
            raise _CellError(
                tr(
                    "{text!r} is not a valid id: spaces and control characters are not allowed",
                    text=text,
                )
            )
        return text

    return convert


def _suppression_key_converter(length: int | None) -> Converter:
    def convert(text: str) -> str:
        # §3: suppressions are keyed by the normalized address, the dedupe key of §4.
        key = dedupe_key(text)
        if key is None:
            raise _CellError(_("is empty; a value is required"))
        if length is not None and len(key) > length:
            raise _CellError(
                tr(
                    "is {n_key} characters long; at most {length} are allowed",
                    n_key=len(key),
                    length=length,
                )
            )
        return key

    return convert


def _column_converter(column: sa.Column[Any]) -> Converter:
    type_ = column.type
    nullable = bool(column.nullable)
    if isinstance(type_, sa.Enum) and type_.enum_class is not None:
        return _enum_converter(type_.enum_class, nullable)
    if isinstance(type_, sa.Date):
        return _date_converter(nullable)
    if isinstance(type_, sa.Boolean):
        return _bool_converter
    if isinstance(type_, sa.String):
        is_id = column.primary_key or bool(column.foreign_keys)
        return _text_converter(type_.length, nullable, is_id)
    raise TypeError(f"no CSV converter for {column.table.name}.{column.name}: {type_!r}")


def _file_spec(table: sa.Table) -> _FileSpec:
    converters: dict[str, Converter] = {}
    references: dict[str, str] = {}
    for column in table.columns:
        if table is Suppression.__table__ and column.name == "email":
            length = getattr(column.type, "length", None)
            converters[column.name] = _suppression_key_converter(length)
        else:
            converters[column.name] = _column_converter(column)
        for fk in column.foreign_keys:
            references[column.name] = fk.column.table.name
    return _FileSpec(
        table=table,
        columns=tuple(c.name for c in table.columns),
        converters=converters,
        key=tuple(c.name for c in table.primary_key.columns),
        references=references,
    )


# --- reading ------------------------------------------------------------------------------------


def _codec_for(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(
            tr("unknown encoding {encoding!r}; use utf-8 or cp932", encoding=encoding)
        ) from None
    # §3: a UTF-8 BOM is accepted (Excel writes one).
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


@dataclass(slots=True)
class _Position:
    """Where the CSV reader stands, shared with the line decoder to name a decode error's column."""

    record_end: int = 0
    header: tuple[str, ...] = ()


def _decode_error(
    path: Path, number: int, raw: bytes, exc: UnicodeDecodeError, encoding: str, pos: _Position
) -> InputError:
    bad = raw[exc.start : exc.start + 1].hex()
    column: str | None = None
    if pos.header and number == pos.record_end + 1:
        # The line starts a record: the cells before the bad byte say which column it is in.
        prefix = raw[: exc.start].decode(encoding, errors="replace")
        cells = next(csv.reader([prefix]), [""])
        if len(cells) <= len(pos.header):
            column = pos.header[len(cells) - 1]
    hint = (
        _("if the file was saved by Excel, try --encoding cp932")
        if encoding.startswith("utf-8")
        else _("if the file is UTF-8, try --encoding utf-8")
    )
    return InputError(
        tr(
            "byte 0x{bad} cannot be decoded as {encoding}; {hint}",
            bad=bad,
            encoding=encoding.removesuffix("-sig"),
            hint=hint,
        ),
        file=str(path),
        line=number,
        column=column,
    )


def _slow_lines(path: Path, encoding: str, pos: _Position) -> Iterator[str]:
    """The file's lines, each decoded on its own so that a bad byte names its line and column."""
    with path.open("rb") as fh:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")

        def decode(number: int, raw: bytes, final: bool) -> str:
            try:
                text: str = decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                raise _decode_error(path, number, raw, exc, encoding, pos) from None
            return text

        # One line of lookahead: the last line is decoded as final, so a character cut off
        # at the end of the file is reported as such, before its row is parsed.
        number, previous = 0, b""
        for raw in fh:
            if number:
                yield decode(number, previous, final=False)
            number, previous = number + 1, raw
        if number:
            yield decode(number, previous, final=True)


_PROBE_BYTES = 1 << 20


def _plain(path: Path, encoding: str) -> bool:
    """True when the whole file decodes and holds no NUL: the fast reader may take it.

    One pass over the bytes in C, cheap next to parsing them (bench/import_speed.py); a file
    that fails it is read line by line, so that the error names its line and column.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(_PROBE_BYTES):
                if b"\x00" in chunk:
                    return False
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _fast_lines(path: Path, encoding: str) -> Iterator[str]:
    """The file's lines from the buffered text reader (split on LF only, like the slow path)."""
    with path.open("r", encoding=encoding, errors="strict", newline="\n") as fh:
        yield from fh


def _records(
    path: Path, encoding: str, *, fast: bool
) -> Generator[tuple[int, list[str]], None, None]:
    """(first physical line, cells) for every non-blank record, the header (line 1) first.

    `fast`: the file passed `_plain` (decodable, no NUL), so the buffered reader can take it.
    """
    pos = _Position()
    lines = _fast_lines(path, encoding) if fast else _slow_lines(path, encoding, pos)
    reader = csv.reader(lines, strict=True)
    while True:
        start = pos.record_end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(
                tr("malformed CSV: {exc}", exc=exc), file=str(path), line=start
            ) from None
        pos.record_end = reader.line_num
        if not cells:
            continue  # a blank line
        if not pos.header:
            pos.header = tuple(cell.strip() for cell in cells)
        yield start, cells


def _check_header(spec: _FileSpec, path: Path, line: int, header: list[str]) -> list[int]:
    """The position in each row of every column of `spec`, in table order."""
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(
                _("column appears twice in the header"), file=str(path), line=line, column=name
            )
        seen.add(name)
    expected = ", ".join(spec.columns)
    # Column names are ASCII: other characters mean a wrong --encoding (a BOM read as cp932).
    hint = "" if all(n.isascii() for n in names) else _("; is the --encoding right?")
    for name in spec.columns:
        if name not in seen:
            raise InputError(
                tr(
                    "missing column; the header must have: {expected}{hint}",
                    expected=expected,
                    hint=hint,
                ),
                file=str(path),
                line=line,
                column=name,
            )
    for name in names:
        if name not in spec.columns:
            raise InputError(
                tr("unknown column; the header may only have: {expected}", expected=expected),
                file=str(path),
                line=line,
                column=name,
            )
    return [names.index(name) for name in spec.columns]


def _cell_error(
    path: Path, line: int, cells: list[str], converters: list[tuple[str, Converter, int]]
) -> InputError:
    """The error of the first bad cell of a row, checked cell by cell in column order."""
    for name, convert, i in converters:
        text = cells[i]
        try:
            if "\x00" in text:
                raise _CellError(_("contains a NUL character"))
            convert(text)
        except _CellError as exc:
            return InputError(str(exc), file=str(path), line=line, column=name)
    raise AssertionError(f"{path}, line {line}: a cell failed once but not again")


def _rows(
    spec: _FileSpec, path: Path, encoding: str, *, fast: bool
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(line, typed row in table column order) for every data row of one file.

    Raises InputError at the first bad cell. `fast`: the file holds no NUL (`_plain`), so the
    cells are converted in one comprehension and only a failing row is checked cell by cell.
    """
    records = _records(path, encoding, fast=fast)
    first = next(records, None)
    if first is None:
        raise InputError(
            tr("the file is empty; expected a header row: {value}", value=", ".join(spec.columns)),
            file=str(path),
            line=1,
        )
    positions = _check_header(spec, path, *first)
    width = len(first[1])
    converters = [
        (name, spec.converters[name], i) for name, i in zip(spec.columns, positions, strict=True)
    ]
    for line, cells in records:
        if len(cells) != width:
            raise InputError(
                tr("expected {width} fields, found {n_cells}", width=width, n_cells=len(cells)),
                file=str(path),
                line=line,
            )
        try:
            # The fast reader's files hold no NUL at all (`_plain`); elsewhere check each cell.
            if not fast and any("\x00" in cells[i] for _name, _convert, i in converters):
                raise _CellError(_("contains a NUL character"))
            row = tuple([convert(cells[i]) for _name, convert, i in converters])
        except _CellError:
            raise _cell_error(path, line, cells, converters) from None
        yield line, row


# --- validation and writing ---------------------------------------------------------------------

Keys = dict[str, set[str]]
"""The keys of the files read so far that other files refer to (single-column keys)."""


def _key_of(spec: _FileSpec) -> Callable[[tuple[Any, ...]], str]:
    """A row's key as one string: a million keys cost far less than tuples with line numbers."""
    where = [spec.columns.index(k) for k in spec.key]
    if len(where) == 1:
        (only,) = where

        def single(row: tuple[Any, ...]) -> str:
            value: str = row[only]
            return value

        return single

    # Key columns are ids and enumeration values, which never hold NUL (refused above).
    first, second = where  # every composite key of §3 has two columns

    def pair(row: tuple[Any, ...]) -> str:
        return f"{row[first]}\x00{row[second]}"

    return pair


def _checked(
    spec: _FileSpec, path: Path, encoding: str, keys: Keys, *, fast: bool
) -> Iterator[tuple[Any, ...]]:
    """The rows of one file that pass every check (references, duplicate keys), in order.

    Records the file's keys in `keys` when another file refers to it.
    """
    key_of = _key_of(spec)
    references = [
        (column, spec.columns.index(column), target, keys.get(target, set()))
        for column, target in spec.references.items()
    ]
    seen: set[str] = set()
    for line, row in _rows(spec, path, encoding, fast=fast):
        for column, i, target, known in references:
            value = row[i]
            if value is not None and value not in known:
                raise InputError(
                    tr(
                        "{value!r} does not match any row of {target}.csv",
                        value=value,
                        target=target,
                    ),
                    file=str(path),
                    line=line,
                    column=column,
                )
        key = key_of(row)
        if key in seen:
            earlier = _first_line(spec, path, encoding, key)
            shown = ", ".join(f"{k}={row[spec.columns.index(k)]!s}" for k in spec.key)
            raise InputError(
                tr(
                    "duplicate key ({shown}), first on line {earlier}", shown=shown, earlier=earlier
                ),
                file=str(path),
                line=line,
                column=spec.key[-1],
            )
        seen.add(key)
        yield row
    keys[spec.table.name] = seen


def _first_line(spec: _FileSpec, path: Path, encoding: str, key: str) -> int:
    """The line where `key` first occurs (read again only to word a duplicate-key error)."""
    key_of = _key_of(spec)
    for line, row in _rows(spec, path, encoding, fast=_plain(path, encoding)):
        if key_of(row) == key:
            return line
    raise AssertionError(f"key {key!r} vanished from {path}")


def _chunks(
    rows: Iterator[tuple[Any, ...]], size: int = CHUNK_ROWS
) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _insert_sql(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows: int = 1
) -> str:
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    values = f"({', '.join(mark for _ in columns)})"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)})"
        f" VALUES {', '.join(values for _ in range(rows))}"
    )


# SQLite: parameters of one multi-row INSERT, within the 999 that every SQLite version allows.
SQLITE_PARAMETERS = 999


def _write_sqlite(conn: sa.Connection, spec: _FileSpec, rows: Iterator[tuple[Any, ...]]) -> int:
    """SQLite: a prepared multi-row INSERT, run by `executemany` over groups of rows.

    A statement per group of rows costs SQLite a third less than a statement per row (one
    step of the virtual machine's loop and one bind/reset per group, bench/import_speed.py).
    """
    width = len(spec.columns)
    per = max(1, SQLITE_PARAMETERS // width)
    many = _insert_sql(conn, spec.table, spec.columns, per)
    one = _insert_sql(conn, spec.table, spec.columns)
    count = 0
    for chunk in _chunks(rows, per * max(1, CHUNK_ROWS // per)):
        full = len(chunk) - len(chunk) % per
        if full:
            groups = [tuple(chain.from_iterable(chunk[i : i + per])) for i in range(0, full, per)]
            conn.exec_driver_sql(many, groups)
        if full < len(chunk):
            conn.exec_driver_sql(one, chunk[full:])
        count += len(chunk)
    return count


class _Refused(Exception):
    """MariaDB's LOAD DATA LOCAL skipped a row or warned: its work is rolled back to the savepoint.

    LOCAL turns the server's refusals (a duplicate key, a value it would not store as given)
    into skipped rows and warnings, since it cannot stop the client's file halfway. `_load`
    then words the first error with the exact checks or, if they find none, writes the file
    again with INSERTs, so that the database's own refusal is what the operator sees.
    """


class _LoadDialect(csv.Dialect):
    """The text format of LOAD DATA with FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\'.

    The csv module writes it in C: a tab, a line feed, a backslash (and the quote character)
    inside a value get a backslash before them, which LOAD DATA reads back as the character
    itself; a carriage return needs none (lines end at a line feed only).
    """

    delimiter = "\t"
    quotechar = '"'
    escapechar = "\\"
    doublequote = False
    lineterminator = "\n"
    quoting = csv.QUOTE_NONE
    strict = True


_LOCAL_INFILE = "swmail_local_infile"
"""Key of `Connection.info`: the connection may run LOAD DATA LOCAL (`_import_connection`)."""


def _load_data_sql(conn: sa.Connection, spec: _FileSpec) -> str:
    """The LOAD DATA statement of one file written by `_write_mariadb` (the path is `%s`).

    Cells are text: None is written as an empty cell, read back as NULL (a checked value is
    never empty: an empty cell is NULL or an error), and a boolean as True/False.
    """
    quote = conn.dialect.identifier_preparer.quote
    targets: list[str] = []
    sets: list[str] = []
    for i, name in enumerate(spec.columns):
        column = spec.table.c[name]
        if isinstance(column.type, sa.Boolean):
            targets.append(f"@v{i}")
            sets.append(f"{quote(name)} = (@v{i} = 'True')")
        elif column.nullable:
            targets.append(f"@v{i}")
            # By length: `= ''` would also match spaces (the collation pads with spaces).
            sets.append(f"{quote(name)} = IF(LENGTH(@v{i}) = 0, NULL, @v{i})")
        else:
            targets.append(quote(name))
    sql = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {quote(spec.table.name)} CHARACTER SET utf8mb4"
        " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
        f" ({', '.join(targets)})"
    )
    return sql + (f" SET {', '.join(sets)}" if sets else "")


def _write_mariadb(conn: sa.Connection, spec: _FileSpec, rows: Iterator[tuple[Any, ...]]) -> int:
    """MariaDB: the checked rows into a private temporary file, loaded by LOAD DATA LOCAL.

    The server parses the file itself, where INSERTs cost PyMySQL an escape call per value
    and the server a statement parse per megabyte (bench/import_speed.py). It runs in the
    import's transaction, so a later bad row still undoes it.
    """
    count = 0
    with tempfile.TemporaryDirectory(prefix="swmail-import-") as folder:
        path = Path(folder) / spec.file_name
        with path.open("w", encoding="utf-8", errors="strict", newline="") as fh:
            writer = csv.writer(fh, dialect=_LoadDialect)
            for chunk in _chunks(rows):
                writer.writerows(chunk)
                count += len(chunk)
        if not count:
            return 0
        conn.exec_driver_sql("SAVEPOINT swmail_load")
        loaded = conn.exec_driver_sql(_load_data_sql(conn, spec), (str(path),)).rowcount
        warnings = conn.exec_driver_sql("SELECT @@warning_count").scalar_one()
        if loaded != count or warnings:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT swmail_load")
            raise _Refused(f"{spec.file_name}: {count} rows, {loaded} loaded, {warnings} warnings")
        conn.exec_driver_sql("RELEASE SAVEPOINT swmail_load")
    return count


def _write_inserts(conn: sa.Connection, spec: _FileSpec, rows: Iterator[tuple[Any, ...]]) -> int:
    """MariaDB without LOAD DATA LOCAL: PyMySQL rewrites each chunk into multi-row INSERTs."""
    sql = _insert_sql(conn, spec.table, spec.columns)
    count = 0
    for chunk in _chunks(rows):
        conn.exec_driver_sql(sql, chunk)
        count += len(chunk)
    return count


def _write(conn: sa.Connection, spec: _FileSpec, rows: Iterator[tuple[Any, ...]]) -> int:
    """Write `rows` into the spec's table with the driver's bulk path; the number written."""
    if conn.dialect.name == "postgresql":
        return copy_rows(conn, spec.table, spec.columns, rows)
    if conn.dialect.name == "sqlite":
        return _write_sqlite(conn, spec, rows)
    if conn.info.get(_LOCAL_INFILE):
        return _write_mariadb(conn, spec, rows)
    return _write_inserts(conn, spec, rows)


# --- the fast path -------------------------------------------------------------------------------
#
# A file without NUL bytes is checked by a row function compiled for its header: one tuple
# expression per row, each cell tested inline (dictionary look-ups for enumerations and booleans,
# a length and an id test for text), instead of a converter call per cell. It only decides
# "accept or not": whatever it does not accept (a bad cell, a wrong field count, a dangling
# reference, a CSV syntax error, a byte that does not decode, a duplicate key refused by the
# table's primary key) makes `_load` check the file again with `_checked`, which words the first
# error exactly as before. Accepting must therefore mean exactly what `_checked` accepts, with
# the same values (tests/db/test_import_fast_path.py compares the two on generated cells).


class _Miss(Exception):
    """The fast path does not accept a row; `_checked` finds and words the first error."""


def _miss() -> Any:
    raise _Miss


class _Dates(dict[str, str | None]):
    """Valid date cells, each checked once: a data set holds a few thousand distinct dates
    among millions of cells, so a dictionary hit replaces a regex and a parse per cell."""

    def __missing__(self, text: str) -> str:
        if not _DATE.fullmatch(text):
            raise _Miss
        try:
            date.fromisoformat(text)
        except ValueError:
            raise _Miss from None
        self[text] = text
        return text


def _implied_by_reference(column: sa.Column[Any]) -> bool:
    """True when a value of `column` found among its target's keys needs no test of its own."""
    length = getattr(column.type, "length", None)
    for fk in column.foreign_keys:
        target = fk.column
        limit = getattr(target.type, "length", None)
        # The target's keys passed its own id test (primary key), and no longer than this.
        ok = target.primary_key and limit is not None and (length is None or limit <= length)
        if not ok or len(target.table.primary_key.columns) != 1:
            return False
    return True


def _cell_expression(spec: _FileSpec, name: str, cell: str, env: dict[str, Any]) -> str:
    """A Python expression of the checked value of `cell` (a variable), or one that raises."""
    column = spec.table.c[name]
    type_ = column.type
    nullable = bool(column.nullable)
    slot = f"_c_{name}"  # a name of its own: no column can shadow the helpers
    if spec.table is Suppression.__table__ and name == "email":
        env[slot] = spec.converters[name]  # normalizes the address: the converter itself
        return f"{slot}({cell})"
    if isinstance(type_, sa.Enum) and type_.enum_class is not None:
        members: dict[str, str | None] = {str(m.value): str(m.value) for m in type_.enum_class}
        if nullable:
            members[""] = None
        env[slot] = members
        return f"{slot}[{cell}]"  # KeyError: not a member
    if isinstance(type_, sa.Boolean):
        env["_booleans"] = _BOOLEANS
        return f"_booleans[{cell}]"
    if isinstance(type_, sa.Date):
        dates = _Dates()
        if nullable:
            dates[""] = None
        env[slot] = dates
        return f"{slot}[{cell}]"  # _Miss: not a date
    if isinstance(type_, sa.String):
        if name in spec.references and _implied_by_reference(column):
            # Found among the referenced file's keys (tested before the row is built): it is
            # an id that already passed the same length and character tests there.
            return f"{cell} if {cell} else " + ("None" if nullable else "_miss()")
        tests = []
        if type_.length is not None:
            tests.append(f"len({cell}) <= {type_.length}")
        if column.primary_key or column.foreign_keys:
            env["_bad_id"] = _NOT_IN_ID.search
            tests.append(f"not _bad_id({cell})")
        test = f"{cell} if {' and '.join(tests)} else _miss()" if tests else cell
        return f"({test}) if {cell} else " + ("None" if nullable else "_miss()")
    raise TypeError(f"no CSV check for {spec.table.name}.{name}: {type_!r}")


def _row_function(
    spec: _FileSpec, positions: list[int], width: int, keys: Keys, keep_keys: bool
) -> Callable[[Iterator[list[str]]], Iterator[tuple[Any, ...]]]:
    """The compiled checker of one file: records in, checked rows out (see above)."""
    env: dict[str, Any] = {"_Miss": _Miss, "_miss": _miss, "keys": keys, "len": len}
    cells = [f"c{i}" for i in range(width)]
    for column, target in spec.references.items():
        env[f"_k_{column}"] = keys.get(target, set())
    expressions = [
        _cell_expression(spec, name, f"c{i}", env)
        for name, i in zip(spec.columns, positions, strict=True)
    ]
    # Everything the loop uses is bound as a default argument: a local, the fastest look-up.
    lines = [f"def rows(records, {', '.join(f'{name}={name}' for name in env)}):"]
    if keep_keys:
        lines += ["    n = 0", "    seen = set()", "    add = seen.add"]
    lines += [
        "    for record in records:",
        "        try:",
        f"            {', '.join(cells)}, = record",
        "        except ValueError:",
        "            if record:",
        "                raise _Miss from None",
        "            continue  # a blank line",
    ]
    for column in spec.references:
        cell = f"c{positions[spec.columns.index(column)]}"
        lines.append(f"        if {cell} and {cell} not in _k_{column}:")
        lines.append("            _miss()")
    lines.append(f"        row = ({', '.join(expressions)},)")
    if keep_keys:
        where = [spec.columns.index(k) for k in spec.key]
        if len(where) == 1:
            lines.append(f"        add(row[{where[0]}])")
        else:
            first, second = where
            lines.append(f"        add(f'{{row[{first}]}}\\x00{{row[{second}]}}')")
        lines.append("        n += 1")
    lines.append("        yield row")
    if keep_keys:
        # Fewer keys than rows: a duplicate somewhere; `_checked` names the first one.
        lines += ["    if len(seen) != n:", "        _miss()"]
        lines.append(f"    keys[{spec.table.name!r}] = seen")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<db import {spec.file_name}>", "exec"), env, namespace)
    function: Callable[[Iterator[list[str]]], Iterator[tuple[Any, ...]]] = namespace["rows"]
    return function


def _fast_checked(
    spec: _FileSpec, path: Path, encoding: str, keys: Keys, *, keep_keys: bool
) -> Iterator[tuple[Any, ...]]:
    """The rows of a file without NUL bytes, checked by its compiled row function.

    Raises `_Miss` (or a CSV error) at anything it does not accept. Duplicate keys are left to
    the table's primary key, except in a file other files refer to (`keep_keys`), whose keys
    are kept for their references anyway.
    """
    with closing(_records(path, encoding, fast=True)) as records:
        first = next(records, None)
    if first is None:
        raise _Miss
    positions = _check_header(spec, path, *first)
    with path.open("r", encoding=encoding, errors="strict", newline="\n") as fh:
        reader = csv.reader(fh, strict=True)
        for header in reader:
            if header:
                break
        yield from _row_function(spec, positions, len(first[1]), keys, keep_keys)(reader)


def _nul_free(path: Path) -> bool:
    """True when the file holds no NUL byte: the fast path may take it (it does not look for
    NUL in cells). A scan of the bytes, ten times cheaper than decoding them (`_plain`): a
    byte that does not decode stops the fast path's reader, and the exact path takes over."""
    with path.open("rb") as fh:
        while chunk := fh.read(_PROBE_BYTES):
            if b"\x00" in chunk:
                return False
    return True


def _load(
    conn: sa.Connection, spec: _FileSpec, path: Path, encoding: str, keys: Keys, keep_keys: bool
) -> int:
    """Check and write one file; a bad row raises InputError (the caller rolls back)."""
    if not _nul_free(path):
        return _write(conn, spec, _checked(spec, path, encoding, keys, fast=False))
    try:
        return _write(conn, spec, _fast_checked(spec, path, encoding, keys, keep_keys=keep_keys))
    except Exception as exc:  # a miss, a bad cell or byte, a CSV error or a refused duplicate
        # The exact check words the first problem of the file as InputError; if it finds none,
        # the original error (a database refusal of another kind) goes on unchanged.
        fast = _plain(path, encoding)
        for _row in _checked(spec, path, encoding, dict(keys), fast=fast):
            pass
        if isinstance(exc, _Refused):
            # LOAD DATA LOCAL's refusals are only warnings: INSERTs give the database's error.
            return _write_inserts(conn, spec, _checked(spec, path, encoding, keys, fast=fast))
        raise


@contextmanager
def _bulk_session(conn: sa.Connection) -> Iterator[None]:
    """Session settings for the load, outside its transaction, restored afterwards.

    The database's own foreign-key checks are off for this connection: every reference was
    checked in Python against the parent file's keys, and SQLite's and MariaDB's checks
    cost a parent look-up per row. Neither setting touches atomicity (one transaction).
    """
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # Both PRAGMAs are no-ops inside a transaction: set before BEGIN.
        synchronous = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        # WAL with NORMAL: the commit is atomic and the file consistent after a crash; only
        # the fsync of the commit is saved (a power cut may lose the whole import, never half).
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.exec_driver_sql(f"PRAGMA synchronous={synchronous}")
            conn.commit()
    elif dialect in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")
            conn.commit()
    else:
        yield


def _defer_constraints(conn: sa.Connection, tables: list[sa.Table]) -> list[str]:
    """Drop the foreign keys and secondary indexes of `tables` for the load.

    Returns the statements that re-create them, exactly as the catalog defines them, to run at
    the end of the same transaction (PostgreSQL's and SQLite's DDL is transactional, so a
    failure restores them with the old data). Built once over the loaded rows, they cost a
    fraction of checking a foreign key per row (PostgreSQL's triggers) and of updating each
    index per row.
    """
    if conn.dialect.name == "sqlite":
        # Foreign keys are off for the load (`_bulk_session`); the indexes SQLite does not make
        # itself (its primary-key indexes have no SQL) are dropped and made again.
        marks = ", ".join("?" for _ in tables)
        found = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({marks}) ORDER BY name",
            tuple(table.name for table in tables),
        ).all()
        for name, _definition in found:
            conn.exec_driver_sql(f"DROP INDEX {conn.dialect.identifier_preparer.quote(name)}")
        return [definition for _name, definition in found]
    if conn.dialect.name != "postgresql":
        return []  # MariaDB: ALTER TABLE would commit the transaction
    quote = conn.dialect.identifier_preparer.quote
    names = [table.name for table in tables]
    own = (
        "SELECT oid FROM pg_class WHERE relname = ANY(:names) AND relkind = 'r'"
        " AND relnamespace = current_schema()::regnamespace"
    )
    foreign_keys = conn.execute(
        sa.text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            f" FROM pg_constraint WHERE contype = 'f' AND conrelid IN ({own}) ORDER BY conname"
        ),
        {"names": names},
    ).all()
    indexes = conn.execute(
        sa.text(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
            f" WHERE indrelid IN ({own}) AND NOT EXISTS"
            " (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid) ORDER BY 1"
        ),
        {"names": names},
    ).all()
    for table, name, _definition in foreign_keys:
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
    for index, _definition in indexes:
        conn.exec_driver_sql(f"DROP INDEX {index}")
    return [definition for _index, definition in indexes] + [
        f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}"
        for table, name, definition in foreign_keys
    ]


def _local_infile_allowed(engine: sa.Engine) -> bool:
    """True when the MariaDB server accepts LOAD DATA LOCAL (its `local_infile` variable)."""
    with engine.connect() as conn:
        return bool(conn.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar_one())


@contextmanager
def _import_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """The import's connection: on MariaDB, one that may send LOAD DATA LOCAL files.

    PyMySQL answers a server's request for a local file only on a connection opened with
    `local_infile=True`, so the import opens its own (no pool) and every other connection of
    the engine stays without it. A server whose `local_infile` is off gets today's INSERTs.
    """
    if engine.dialect.name not in ("mysql", "mariadb") or not _local_infile_allowed(engine):
        with engine.connect() as conn:
            yield conn
        return
    own = sa.create_engine(
        engine.url,
        poolclass=sa.pool.NullPool,
        connect_args={"local_infile": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        with own.connect() as conn:
            conn.info[_LOCAL_INFILE] = True
            yield conn
    finally:
        own.dispose()


def import_dir(engine: sa.Engine, directory: Path, encoding: str = "utf-8") -> ImportReport:
    """Replace the source data set with the CSV files in `directory` (SPEC §3), all or nothing."""
    started = time.monotonic()
    codec = _codec_for(encoding)
    if not directory.is_dir():
        raise InputError(_("folder not found"), file=str(directory))
    specs = [_file_spec(table) for table in source_tables()]
    present = [spec for spec in specs if (directory / spec.file_name).is_file()]
    absent = tuple(sorted({spec.file_name for spec in specs} - {s.file_name for s in present}))
    missing = sorted(REQUIRED_FILES.intersection(absent))
    if missing:
        raise InputError(_("required file not found"), file=str(directory / missing[0]))

    referenced = {target for spec in specs for target in spec.references.values()}
    keys: Keys = {}
    counts = {spec.table.name: 0 for spec in specs}
    init_source_schema(engine)
    # One transaction: the old data set is deleted first and every file is checked while it is
    # written, so the first bad row (InputError) or a database refusal undoes all of it.
    with _import_connection(engine) as conn, _bulk_session(conn), conn.begin():
        for spec in reversed(specs):  # children first (foreign keys)
            conn.execute(spec.table.delete())
        # After the first DELETE: Python's sqlite3 opens the transaction only before DML, and
        # would run DDL before it outside any transaction.
        rebuild = _defer_constraints(conn, [spec.table for spec in specs])
        for spec in present:  # parents first: a reference is checked against keys already read
            name = spec.table.name
            path = directory / spec.file_name
            counts[name] = _load(conn, spec, path, codec, keys, name in referenced)
            if name not in referenced:
                keys.pop(name, None)
        for statement in rebuild:
            conn.exec_driver_sql(statement)
        if conn.dialect.name == "postgresql":
            # Fresh statistics, so that the first resolution after an import plans its range
            # scans on the real table sizes.
            for spec in present:
                conn.exec_driver_sql(
                    f"ANALYZE {conn.dialect.identifier_preparer.quote(spec.table.name)}"
                )
    return ImportReport(
        directory=directory,
        counts=counts,
        absent=absent,
        elapsed_seconds=time.monotonic() - started,
    )
