"""`export-postal` (SPEC §10): the paper-mail list as a CSV file for the print shop or Excel.

Who is on it is `resolver.postal`; this module reads the source data in one snapshot, writes the
CSV with the conventions of §5 (BOM or cp932, formula protection) and collects the accounts
without a postal address as warnings `MISSING_POSTAL_ADDRESS` (still listed: the office looks
them up by phone rather than lose the letter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from itertools import chain
from pathlib import Path

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.i18n import tr
from jobs.reports.audit import CsvOut, UnencodableCell
from jobs.source.engine import snapshot
from jobs.source.loader import iter_customer_accounts, iter_partner_accounts
from jobs.source.models import check_source_schema
from resolver.model import AccountKind
from resolver.postal import PostalRow, customer_postal_row, partner_postal_row

__all__ = ["MISSING_POSTAL_ADDRESS", "POSTAL_COLUMNS", "PostalReport", "export_postal"]

POSTAL_COLUMNS: tuple[str, ...] = (
    "account_kind", "account_id", "account_name", "postal_code", "address", "attention",
)  # fmt: skip
MISSING_POSTAL_ADDRESS = "MISSING_POSTAL_ADDRESS"


@dataclass
class PostalReport:
    """What `export-postal` wrote."""

    as_of: date
    rows: int = 0
    counts: dict[AccountKind, int] = field(default_factory=dict)
    missing: list[PostalRow] = field(default_factory=list)  # MISSING_POSTAL_ADDRESS
    unencodable: list[UnencodableCell] = field(default_factory=list)

    def warning_lines(self) -> list[str]:
        """One stderr line per account without a postal address (§10)."""
        return [
            tr(
                "warning {code}: {kind} {account_id} {name}: the postal code or address is empty",
                code=MISSING_POSTAL_ADDRESS,
                kind=row.account_kind.value,
                account_id=row.account_id,
                name=row.account_name,
            )
            for row in self.missing
        ]

    def warning_count(self) -> str:
        """The summary's count of warnings, by code."""
        return f"{MISSING_POSTAL_ADDRESS} {len(self.missing):,}"


def export_postal(
    engine: sa.Engine, campaign: Campaign, out: Path, *, as_of: date, encoding: str = "utf-8"
) -> PostalReport:
    """Write the campaign's paper-mail list to `out`; the file appears only when complete."""
    check_source_schema(engine)
    report = PostalReport(as_of=as_of)
    # CsvOut writes a private temporary file and renames it into place when complete
    with snapshot(engine) as conn, CsvOut(out, POSTAL_COLUMNS, encoding) as csv_out:
        # §10: customers first, then partners, each by id (the loaders' order)
        rows = (customer_postal_row(a, campaign.policy) for a in iter_customer_accounts(conn))
        partner_rows = (partner_postal_row(a, campaign.policy) for a in iter_partner_accounts(conn))
        for row in chain(rows, partner_rows):  # one after the other, never all in memory
            if row is None:
                continue
            csv_out.write(row.cells())
            report.counts[row.account_kind] = report.counts.get(row.account_kind, 0) + 1
            if row.missing_address:
                report.missing.append(row)
    report.rows = csv_out.rows
    report.unencodable = csv_out.unencodable
    return report
