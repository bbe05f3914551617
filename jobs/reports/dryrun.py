"""The dry run (SPEC §8 `dry-run`): resolve, write the audit and every message, send nothing.

Everything is written into a temporary folder inside DIR and moved into place at the end, so a
failure halfway (a template that breaks on one recipient's data, a full disk) leaves the previous
dry run's files as they were instead of a mix of old and new. Files are owner-only and never
written through a symlink (`jobs.files`).

DIR is the operator's folder: a dry run replaces only what a dry run wrote. `DIR/messages` is
replaced only when it carries the marker file of a dry run and holds nothing but that marker and
`<n>.eml` files; anything else is refused (exit 2) before any work, never deleted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.config.runs import make_run_id
from jobs.errors import InputError
from jobs.files import PRIVATE_DIR_MODE, make_private_dirs, write_private_bytes
from jobs.i18n import N_, _, tr
from jobs.messages.compose import TOKYO, Composer
from jobs.progress import Progress
from jobs.reports.audit import (
    AUDIT_COLUMNS,
    CsvOut,
    UnencodableCell,
    audit_line_from_row,
    write_warnings,
)
from jobs.resolution.pipeline import Summary, resolve_campaign
from resolver.model import AuditRow

__all__ = ["DRY_RUN_STATUS", "DryRunReport", "dry_run"]

DRY_RUN_STATUS = "dry_run"
_FILES = ("audit.csv", "warnings.csv")
_MESSAGES = "messages"
MARKER = ".swmail-dry-run"
"""In `DIR/messages`: this folder was written by a dry run and the next one may replace it."""
_MARKER_TEXT = b"Written by swmail dry-run; the next dry-run into the same --out replaces it.\n"
_OWN_MESSAGE = re.compile(r"[0-9]+\.eml")


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
    check_out_folder(out)
    run_id = make_run_id(campaign.id, composer.run_key)
    created = not os.path.lexists(out)
    make_private_dirs(out)
    work = Path(tempfile.mkdtemp(prefix=".swmail-dry-run-", dir=out))  # 0700
    done = False
    try:
        with CsvOut(work / "audit.csv", AUDIT_COLUMNS, encoding) as audit:

            def write_row(row: AuditRow) -> None:
                mid = composer.message_id(row.delivery_key) if row.delivery_key else ""
                line = audit_line_from_row(
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
        with resolved:  # the deliveries' temporary file is removed at the end
            warnings_out = write_warnings(work / "warnings.csv", resolved.warnings, encoding)
            report = DryRunReport(
                out=out,
                run_id=run_id,
                summary=resolved.summary,
                unencodable=[*audit.unencodable, *warnings_out.unencodable],
            )
            messages = work / _MESSAGES
            os.mkdir(messages, PRIVATE_DIR_MODE)
            os.chmod(messages, PRIVATE_DIR_MODE)
            write_private_bytes(messages / MARKER, _MARKER_TEXT)
            now = datetime.now(TOKYO)
            bar = Progress(N_("rendering messages"), len(resolved.deliveries)) if progress else None
            for delivery in resolved.deliveries:
                composed = composer.compose(delivery, now)
                write_private_bytes(messages / f"{delivery.seq}.eml", composed.data)
                if composed.fallback:
                    report.charset_fallbacks.append(delivery.email)
                report.messages += 1
                if bar is not None:
                    bar.advance()
            if bar is not None:
                bar.close()
            for name in _FILES:
                os.replace(work / name, out / name)  # replaces a symlink there, never its target
            previous = out / _MESSAGES
            if os.path.lexists(previous):
                _check_own_messages(previous)  # again: it may have changed during the run
                os.rename(previous, work / "previous-messages")  # deleted with `work` below
            os.rename(messages, previous)
            done = True
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created and not done:
            with contextlib.suppress(OSError):
                out.rmdir()  # a failed first dry run leaves no empty DIR behind


def check_out_folder(out: Path) -> None:
    """Refuse (exit 2) an `--out` whose outputs a dry run would overwrite but did not write."""
    if os.path.lexists(out) and not out.is_dir():
        raise InputError(_("--out must be a folder"), file=str(out))
    for name in _FILES:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            raise InputError(_("is a folder; a dry run writes a file there"), file=str(target))
    messages = out / _MESSAGES
    if os.path.lexists(messages):
        _check_own_messages(messages)


def _check_own_messages(messages: Path) -> None:
    if messages.is_symlink() or not messages.is_dir():
        raise InputError(
            _("exists and is not a folder written by dry-run; choose another --out"),
            file=str(messages),
        )
    if not (messages / MARKER).is_file():
        raise InputError(
            tr(
                "was not written by dry-run (no {MARKER} file in it), so it is not replaced; "
                "choose another --out or move the folder away",
                MARKER=MARKER,
            ),
            file=str(messages),
        )
    for entry in messages.iterdir():
        own = entry.name == MARKER or (
            _OWN_MESSAGE.fullmatch(entry.name) is not None
            and entry.is_file()
            and not entry.is_symlink()
        )
        if not own:
            raise InputError(
                tr(
                    "holds {name!r}, which dry-run did not write, so the folder is not replaced; "
                    "move that file away first",
                    name=entry.name,
                ),
                file=str(messages),
            )
