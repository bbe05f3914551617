"""Audit and warnings CSV files (SPEC §4 warnings.csv, §5 audit CSV).

These files are opened in Excel by Japanese support staff and read by auditors' scripts, so the
columns are a public interface, the default encoding is UTF-8 with a BOM (Excel detects it), cells
that Excel would run as formulas are neutralised, and `cp932` output reports the characters it
cannot carry instead of crashing or silently dropping them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from jobs.files import private_output
from resolver.model import AuditRow, Warning, join_reasons

__all__ = [
    "AUDIT_COLUMNS",
    "WARNING_COLUMNS",
    "AuditLine",
    "CsvOut",
    "UnencodableCell",
    "audit_line_from_row",
    "protect_formula",
    "write_warnings",
]

AUDIT_COLUMNS: tuple[str, ...] = (
    "run_id", "campaign_id", "decision", "reasons", "audience", "account_id", "account_name",
    "source", "person_id", "name", "email", "delivery_email", "status", "attempts",
    "last_smtp_code", "last_error", "message_id", "sent_at",
)  # fmt: skip
WARNING_COLUMNS: tuple[str, ...] = ("code", "account_id", "person_id", "email", "detail")

ENCODINGS = {"utf-8": "utf-8-sig", "utf-8-sig": "utf-8-sig", "cp932": "cp932"}

_FORMULA_LEADERS = ("=", "+", "-", "@", "\t", "\r")


def protect_formula(cell: str) -> str:
    """§5: a cell Excel would evaluate as a formula is prefixed with `'`."""
    return "'" + cell if cell.startswith(_FORMULA_LEADERS) else cell


@dataclass(frozen=True, slots=True)
class AuditLine:
    """One audit CSV row, every cell already a string."""

    run_id: str
    campaign_id: str
    decision: str
    reasons: str
    audience: str
    account_id: str
    account_name: str
    source: str
    person_id: str
    name: str
    email: str
    delivery_email: str = ""
    status: str = ""
    attempts: str = ""
    last_smtp_code: str = ""
    last_error: str = ""
    message_id: str = ""
    sent_at: str = ""

    def cells(self) -> tuple[str, ...]:
        return tuple(getattr(self, name) for name in AUDIT_COLUMNS)


def audit_line_from_row(
    row: AuditRow, *, run_id: str, campaign_id: str, status: str = "", message_id: str = ""
) -> AuditLine:
    """The audit row of a resolution that has not been sent (dry run: status `dry_run`)."""
    has_delivery = row.delivery_key is not None
    return AuditLine(
        run_id=run_id,
        campaign_id=campaign_id,
        decision=row.decision.value,
        reasons=join_reasons(row.reasons),
        audience=row.audience.value,
        account_id=row.account_id,
        account_name=row.account_name,
        source=row.source.value,
        person_id=row.person_id,
        name=row.name,
        email=row.email,
        delivery_email=row.delivery_email or "",
        status=status if has_delivery else "",
        message_id=message_id if has_delivery else "",
    )


@dataclass(frozen=True, slots=True)
class UnencodableCell:
    """A cell whose characters the chosen encoding cannot carry (replaced by `?` in the file)."""

    line: int
    column: str
    value: str


@dataclass
class CsvOut:
    """A CSV file being written: header first, formula protection and encoding checks per cell.

    Written through `jobs.files.private_output` (0600, a temporary file renamed into place on
    `close`), so a failure halfway leaves the previous file and no symlink is written through.
    """

    path: Path
    columns: Sequence[str]
    encoding: str = "utf-8"
    unencodable: list[UnencodableCell] = field(default_factory=list)
    rows: int = 0

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unsupported encoding {self.encoding!r}")
        self._codec = ENCODINGS[self.encoding]
        self._stack = ExitStack()
        raw = self._stack.enter_context(private_output(self.path))
        self._file = io.TextIOWrapper(raw, encoding=self._codec, newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.columns)

    def write(self, cells: Sequence[str]) -> None:
        self.rows += 1
        out = [protect_formula(cell) for cell in cells]
        if self._codec == "cp932":
            for i, cell in enumerate(out):
                try:
                    cell.encode("cp932")
                except UnicodeEncodeError:
                    # the header is line 1; report the physical line Excel shows
                    self.unencodable.append(UnencodableCell(self.rows + 1, self.columns[i], cell))
                    out[i] = cell.encode("cp932", errors="replace").decode("cp932")
        self._writer.writerow(out)

    def close(self) -> None:
        """Finish the file: it replaces `path` now."""
        self._file.flush()
        self._file.detach()  # `private_output` closes the raw file, then renames it
        self._stack.close()

    def discard(self) -> None:
        """Abandon the file: `path` keeps what it held before."""
        self._file.flush()
        self._file.detach()
        self._stack.__exit__(RuntimeError, RuntimeError("discarded"), None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.discard()


def write_warnings(path: Path, warnings: Iterable[Warning], encoding: str = "utf-8") -> CsvOut:
    """Write `warnings.csv`; returns the closed writer for its row and unencodable counts."""
    with CsvOut(path, WARNING_COLUMNS, encoding) as out:
        for w in warnings:
            out.write((w.code.value, w.account_id, w.person_id, w.email, w.detail))
    return out
