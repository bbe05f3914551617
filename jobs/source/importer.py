"""`db import DIR`: load the CSV files of SPEC §3 into the source tables, all or nothing.

Every row is validated in Python (keys and references checked against key sets of the files
read before it), so a bad row is reported with its file, physical line and column in words
rather than as a database error, and identically on SQLite, PostgreSQL and MariaDB.

Each file is read once: rows are validated and written in the same pass, inside the one
transaction that first deleted the old data set, so the first bad row rolls everything back and
leaves the database exactly as it was. Writing uses each driver's bulk path (issue 10): COPY on
PostgreSQL (psycopg 3), one prepared `executemany` per table on SQLite, and multi-row INSERTs on
MariaDB (PyMySQL turns `executemany` into them). A file is decoded by the fast text reader when a
first pass over its bytes finds it decodable; otherwise the line-by-line decoder names the line
and column of the bad byte.

The column rules are derived from the table definitions of `jobs.source.models`, so the CSV
format, the validation and the schema cannot drift apart.
"""

from __future__ import annotations

import codecs
import csv
import enum
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jobs.errors import InputError
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
            raise _CellError(f"unknown value {text!r}; expected one of: {allowed}") from None

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
        raise _CellError(f"{text!r} is not a date in the form YYYY-MM-DD")

    return convert


def _bool_converter(text: str) -> bool:
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise _CellError(f"{text!r} is not a boolean; expected 0 or 1") from None


def _text_converter(length: int | None, nullable: bool, is_id: bool) -> Converter:
    def convert(text: str) -> str | None:
        if text == "":
            if nullable:
                return None
            raise _CellError("is empty; a value is required")
        if length is not None and len(text) > length:
            raise _CellError(f"is {len(text)} characters long; at most {length} are allowed")
        if is_id and _NOT_IN_ID.search(text):
            raise _CellError(
                f"{text!r} is not a valid id: spaces and control characters are not allowed"
            )
        return text

    return convert


def _suppression_key_converter(length: int | None) -> Converter:
    def convert(text: str) -> str:
        # §3: suppressions are keyed by the normalized address, the dedupe key of §4.
        key = dedupe_key(text)
        if key is None:
            raise _CellError("is empty; a value is required")
        if length is not None and len(key) > length:
            raise _CellError(f"is {len(key)} characters long; at most {length} are allowed")
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
        raise InputError(f"unknown encoding {encoding!r}; use utf-8 or cp932") from None
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
        "if the file was saved by Excel, try --encoding cp932"
        if encoding.startswith("utf-8")
        else "if the file is UTF-8, try --encoding utf-8"
    )
    return InputError(
        f"byte 0x{bad} cannot be decoded as {encoding.removesuffix('-sig')}; {hint}",
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


def _records(path: Path, encoding: str, *, fast: bool) -> Iterator[tuple[int, list[str]]]:
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
            raise InputError(f"malformed CSV: {exc}", file=str(path), line=start) from None
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
                "column appears twice in the header", file=str(path), line=line, column=name
            )
        seen.add(name)
    expected = ", ".join(spec.columns)
    # Column names are ASCII: other characters mean a wrong --encoding (a BOM read as cp932).
    hint = "" if all(n.isascii() for n in names) else "; is the --encoding right?"
    for name in spec.columns:
        if name not in seen:
            raise InputError(
                f"missing column; the header must have: {expected}{hint}",
                file=str(path),
                line=line,
                column=name,
            )
    for name in names:
        if name not in spec.columns:
            raise InputError(
                f"unknown column; the header may only have: {expected}",
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
                raise _CellError("contains a NUL character")
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
            f"the file is empty; expected a header row: {', '.join(spec.columns)}",
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
                f"expected {width} fields, found {len(cells)}", file=str(path), line=line
            )
        try:
            # The fast reader's files hold no NUL at all (`_plain`); elsewhere check each cell.
            if not fast and any("\x00" in cells[i] for _name, _convert, i in converters):
                raise _CellError("contains a NUL character")
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
                    f"{value!r} does not match any row of {target}.csv",
                    file=str(path),
                    line=line,
                    column=column,
                )
        key = key_of(row)
        if key in seen:
            earlier = _first_line(spec, path, encoding, key)
            shown = ", ".join(f"{k}={row[spec.columns.index(k)]!s}" for k in spec.key)
            raise InputError(
                f"duplicate key ({shown}), first on line {earlier}",
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


def _chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(islice(rows, CHUNK_ROWS)):
        yield chunk


def _insert_sql(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)})"
        f" VALUES ({', '.join(mark for _ in columns)})"
    )


def _write(conn: sa.Connection, spec: _FileSpec, rows: Iterator[tuple[Any, ...]]) -> int:
    """Write `rows` into the spec's table with the driver's bulk path; the number written."""
    count = 0
    if conn.dialect.name == "postgresql":
        quote = conn.dialect.identifier_preparer.quote
        sql = (
            f"COPY {quote(spec.table.name)} ({', '.join(quote(c) for c in spec.columns)})"
            " FROM STDIN"
        )
        # The driver connection of this SQLAlchemy connection: COPY joins its transaction.
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    # SQLite: one statement prepared once (the driver's cache) and run per chunk. MariaDB:
    # PyMySQL rewrites each chunk into multi-row INSERTs of up to 1 MB.
    sql = _insert_sql(conn, spec.table, spec.columns)
    for chunk in _chunks(rows):
        conn.exec_driver_sql(sql, chunk)
        count += len(chunk)
    return count


def _load(conn: sa.Connection, spec: _FileSpec, path: Path, encoding: str, keys: Keys) -> int:
    """Check and write one file; a bad row raises InputError (the caller rolls back)."""
    rows = _checked(spec, path, encoding, keys, fast=_plain(path, encoding))
    return _write(conn, spec, rows)


def import_dir(engine: sa.Engine, directory: Path, encoding: str = "utf-8") -> ImportReport:
    """Replace the source data set with the CSV files in `directory` (SPEC §3), all or nothing."""
    started = time.monotonic()
    codec = _codec_for(encoding)
    if not directory.is_dir():
        raise InputError("folder not found", file=str(directory))
    specs = [_file_spec(table) for table in source_tables()]
    present = [spec for spec in specs if (directory / spec.file_name).is_file()]
    absent = tuple(sorted({spec.file_name for spec in specs} - {s.file_name for s in present}))
    missing = sorted(REQUIRED_FILES.intersection(absent))
    if missing:
        raise InputError("required file not found", file=str(directory / missing[0]))

    referenced = {target for spec in specs for target in spec.references.values()}
    keys: Keys = {}
    counts = {spec.table.name: 0 for spec in specs}
    init_source_schema(engine)
    # One transaction: the old data set is deleted first and every file is checked while it is
    # written, so the first bad row (InputError) or a database refusal undoes all of it.
    with engine.begin() as conn:
        for spec in reversed(specs):  # children first (foreign keys)
            conn.execute(spec.table.delete())
        for spec in present:  # parents first: a reference is checked against keys already read
            counts[spec.table.name] = _load(conn, spec, directory / spec.file_name, codec, keys)
            if spec.table.name not in referenced:
                keys.pop(spec.table.name, None)
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
