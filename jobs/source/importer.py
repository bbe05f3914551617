"""`db import DIR`: load the CSV files of SPEC §3 into the source tables, all or nothing.

Every file is validated in Python first (a streaming pass that keeps only key sets), so a bad
row is reported with its file, physical line and column in words rather than as a database
error, and identically on SQLite, PostgreSQL and MariaDB. Only then is the old data set deleted
and the new one inserted in chunks, in one transaction: a failure at any point leaves the
database exactly as it was.

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
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jobs.errors import InputError
from jobs.i18n import _, tr
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
    members = {str(m.value): m for m in enum_class}
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
    def convert(text: str) -> date | None:
        if text == "" and nullable:
            return None
        if _DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
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


def _records(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, cells) for every non-blank record, the header (line 1) first."""
    pos = _Position()
    with path.open("rb") as fh:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")

        def decode(number: int, raw: bytes, final: bool) -> str:
            try:
                text: str = decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                raise _decode_error(path, number, raw, exc, encoding, pos) from None
            return text

        def lines() -> Iterator[str]:
            # One line of lookahead: the last line is decoded as final, so a character cut off
            # at the end of the file is reported as such, before its row is parsed.
            number, previous = 0, b""
            for raw in fh:
                if number:
                    yield decode(number, previous, final=False)
                number, previous = number + 1, raw
            if number:
                yield decode(number, previous, final=True)

        reader = csv.reader(lines(), strict=True)
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


def _rows(spec: _FileSpec, path: Path, encoding: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, typed row) for every data row of one file; raises InputError at the first bad cell."""
    records = _records(path, encoding)
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
        row: dict[str, Any] = {}
        for name, convert, i in converters:
            text = cells[i]
            try:
                if "\x00" in text:
                    raise _CellError(_("contains a NUL character"))
                row[name] = convert(text)
            except _CellError as exc:
                raise InputError(str(exc), file=str(path), line=line, column=name) from None
        yield line, row


# --- validation and writing ---------------------------------------------------------------------


def _validate(
    spec: _FileSpec, path: Path, encoding: str, keys: dict[str, dict[tuple[Any, ...], int]]
) -> int:
    """Check a whole file (keys, references); records its keys for the files that refer to it."""
    seen: dict[tuple[Any, ...], int] = {}
    count = 0
    for line, row in _rows(spec, path, encoding):
        for column, target in spec.references.items():
            value = row[column]
            if value is not None and (value,) not in keys.get(target, {}):
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
        key = tuple(row[k] for k in spec.key)
        earlier = seen.setdefault(key, line)
        if earlier != line:
            shown = ", ".join(f"{k}={row[k]!s}" for k in spec.key)
            raise InputError(
                tr(
                    "duplicate key ({shown}), first on line {earlier}", shown=shown, earlier=earlier
                ),
                file=str(path),
                line=line,
                column=spec.key[-1],
            )
        count += 1
    keys[spec.table.name] = seen
    return count


def _chunks(rows: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for _line, row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
    keys: dict[str, dict[tuple[Any, ...], int]] = {}
    counts = {spec.table.name: 0 for spec in specs}
    for spec in present:  # parents first: a reference is checked against keys already read
        counts[spec.table.name] = _validate(spec, directory / spec.file_name, codec, keys)
        if spec.table.name not in referenced:
            keys.pop(spec.table.name)
    keys.clear()

    init_source_schema(engine)
    with engine.begin() as conn:
        for spec in reversed(specs):  # children first (foreign keys)
            conn.execute(spec.table.delete())
        for spec in present:
            path = directory / spec.file_name
            for chunk in _chunks(_rows(spec, path, codec)):
                conn.execute(spec.table.insert(), chunk)
    return ImportReport(
        directory=directory,
        counts=counts,
        absent=absent,
        elapsed_seconds=time.monotonic() - started,
    )
