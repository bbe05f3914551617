"""`diff --run A --run B [--out FILE.csv]` (SPEC §9): who changed between two runs, and how.

A person is the same in both runs when audience, account, source and person id match (My Page
contacts have no person id; their source tells contract manager and billing contact apart). A
row is `added` (only in B), `removed` (only in A) or `changed` (decision or reasons differ), with
both reason cells, in the CSV conventions of §5 (BOM for Excel, formula cells quoted).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from jobs.i18n import fmt_person, tr
from jobs.ledger import check_ledger, iter_audit
from jobs.ledger.values import AuditExportRow
from jobs.reports.audit import CsvOut
from jobs.reports.status import find_run
from resolver.model import join_reasons

__all__ = ["DIFF_COLUMNS", "DiffLine", "diff_runs", "diff_text", "totals", "write_diff"]

DIFF_COLUMNS: tuple[str, ...] = (
    "change",
    "audience",
    "account_id",
    "account_name",
    "source",
    "person_id",
    "name",
    "email",
    "decision_a",
    "reasons_a",
    "decision_b",
    "reasons_b",
)
CHANGES = ("added", "removed", "changed")

_Person = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class DiffLine:
    change: str  # added | removed | changed
    row: AuditExportRow  # B's row, or A's for `removed`
    a: AuditExportRow | None
    b: AuditExportRow | None

    def cells(self) -> tuple[str, ...]:
        r = self.row
        return (
            self.change,
            r.audience.value,
            r.account_id,
            r.account_name,
            r.source.value,
            r.person_id,
            r.name,
            r.email,
            "" if self.a is None else self.a.decision.value,
            "" if self.a is None else join_reasons(self.a.reasons),
            "" if self.b is None else self.b.decision.value,
            "" if self.b is None else join_reasons(self.b.reasons),
        )

    def text(self) -> str:
        """One line for a terminal: who, and decision [reasons] before → after."""
        c = self.cells()
        return (
            f"{c[0]:<8} {c[1]} {c[2]} {c[4]} {c[5]} {fmt_person(c[6], c[7])}: "
            f"{c[8] or '-'} [{c[9]}] → {c[10] or '-'} [{c[11]}]"
        )


def totals(run_a: str, run_b: str, counts: dict[str, int]) -> str:
    """The closing line: how many people were added, removed and changed."""
    return tr(
        "{run_a} → {run_b}: added {added:,}, removed {removed:,}, changed {changed:,}",
        run_a=run_a,
        run_b=run_b,
        **{k: counts.get(k, 0) for k in CHANGES},
    )


def diff_text(engine: sa.Engine, run_a: str, run_b: str) -> Iterator[str]:
    """The diff for a terminal: one line per person, then the totals."""
    counts = dict.fromkeys(CHANGES, 0)
    for line in diff_runs(engine, run_a, run_b):
        counts[line.change] += 1
        yield line.text()
    yield totals(run_a, run_b, counts)


def _person(row: AuditExportRow) -> _Person:
    return (row.audience.value, row.account_id, row.source.value, row.person_id)


def _rows(conn: sa.Connection, run_id: str) -> dict[_Person, AuditExportRow]:
    return {_person(row): row for row in iter_audit(conn, find_run(conn, run_id))}


def diff_runs(engine: sa.Engine, run_a: str, run_b: str) -> Iterator[DiffLine]:
    """The people whose decision or reasons differ, in B's audit order, then A's removed rows."""
    check_ledger(engine)
    with engine.connect() as conn:
        a_rows = _rows(conn, run_a)
        b_rows = _rows(conn, run_b)
    for key, b in b_rows.items():
        a = a_rows.get(key)
        if a is None:
            yield DiffLine("added", b, None, b)
        elif a.decision is not b.decision or a.reasons != b.reasons:
            yield DiffLine("changed", b, a, b)
    for key, a in a_rows.items():
        if key not in b_rows:
            yield DiffLine("removed", a, a, None)


def write_diff(
    lines: Iterator[DiffLine], out: Path, encoding: str
) -> tuple[dict[str, int], CsvOut]:
    """Write the diff CSV; returns the count per change and the closed writer."""
    counts = dict.fromkeys(CHANGES, 0)
    with CsvOut(out, DIFF_COLUMNS, encoding) as csv_out:
        for line in lines:
            counts[line.change] += 1
            csv_out.write(line.cells())
    return counts, csv_out
