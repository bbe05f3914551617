"""The dry run (SPEC §8 `dry-run`): resolve, write the audit and every message, send nothing.

Everything is written into a temporary folder beside DIR and moved into place at the end, so a
failure halfway (a template that breaks on one recipient's data, a full disk) leaves the previous
dry run's files as they were instead of a mix of old and new.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.config.runs import make_run_id
from jobs.messages.compose import TOKYO, Composer
from jobs.progress import Progress
from jobs.reports.audit import (
    AUDIT_COLUMNS,
    CsvOut,
    UnencodableCell,
    audit_line_from_decided,
    write_warnings,
)
from jobs.resolution.pipeline import Summary, resolve_campaign
from resolver.model import Decided

__all__ = ["DRY_RUN_STATUS", "DryRunReport", "dry_run"]

DRY_RUN_STATUS = "dry_run"
_OUTPUTS = ("audit.csv", "warnings.csv", "messages")


@dataclass
class DryRunReport:
    out: Path
    run_id: str
    summary: Summary
    messages: int = 0
    charset_fallbacks: list[str] = field(default_factory=list)  # delivery addresses
    unencodable: list[UnencodableCell] = field(default_factory=list)


def dry_run(
    engine: sa.Engine,
    campaign: Campaign,
    composer: Composer,
    out: Path,
    *,
    as_of: date,
    extra_suppressed: frozenset[str] = frozenset(),
    already_sent: frozenset[str] = frozenset(),
    encoding: str = "utf-8",
    progress: bool = True,
) -> DryRunReport:
    """Write audit.csv, warnings.csv and messages/<n>.eml for the run (campaign, run key)."""
    composer.check()  # §8 exit 2 on a broken template, before anything is written
    run_id = make_run_id(campaign.id, composer.run_key)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        with CsvOut(work / "audit.csv", AUDIT_COLUMNS, encoding) as audit:

            def write_row(row: Decided) -> None:
                mid = composer.message_id(row.delivery_key) if row.delivery_key else ""
                line = audit_line_from_decided(
                    row,
                    run_id=run_id,
                    campaign_id=campaign.id,
                    status=DRY_RUN_STATUS,
                    message_id=mid,
                )
                audit.write(line.cells())

            resolved = resolve_campaign(
                engine,
                campaign,
                as_of,
                extra_suppressed=extra_suppressed,
                already_sent=already_sent,
                on_row=write_row,
                progress=progress,
            )
        warnings_out = write_warnings(work / "warnings.csv", resolved.warnings, encoding)
        report = DryRunReport(
            out=out,
            run_id=run_id,
            summary=resolved.summary,
            unencodable=[*audit.unencodable, *warnings_out.unencodable],
        )
        messages = work / "messages"
        messages.mkdir()
        now = datetime.now(TOKYO)
        bar = Progress("rendering messages", len(resolved.deliveries)) if progress else None
        for delivery in resolved.deliveries:
            composed = composer.compose(delivery, now)
            (messages / f"{delivery.seq}.eml").write_bytes(composed.data)
            if composed.fallback:
                report.charset_fallbacks.append(delivery.email)
            report.messages += 1
            if bar is not None:
                bar.advance()
        if bar is not None:
            bar.close()
        out.mkdir(parents=True, exist_ok=True)
        for name in _OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            (work / name).rename(target)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
