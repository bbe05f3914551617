"""Approval of a run key (SPEC §9): a person looks at the counts once, and nothing else goes out.

`approve` records a fingerprint of everything that decides what is sent besides the data (the
campaign file, its templates and shared layouts, the `[message]` settings) with the counts the
operator saw. `run` and `nightly` refuse a campaign with `require_approval = true` when there is
no approval for the run key, when any of the three parts changed since, or when an audience's
`send` count drifted by more than `max_drift_percent` (a data import that went wrong).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.config.settings import MessageSettings
from jobs.errors import ApprovalRefused
from jobs.i18n import N_, _, tr
from jobs.ledger import (
    Approval,
    get_approval,
    holder_description,
    save_approval,
)
from jobs.ledger.codec import utc_now
from jobs.resolution.pipeline import Summary, resolve_campaign

__all__ = [
    "ApprovalGate",
    "Fingerprint",
    "approve",
    "approve_command",
    "counts_of",
    "drifts",
    "fingerprint",
]

PARTS = ("campaign_file", "templates", "message")
_PART_WORDS = {
    "campaign_file": N_("the campaign file"),
    "templates": N_("the templates"),
    "message": N_("the [message] settings"),
}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """sha256 of each part, and of the three together."""

    parts: Mapping[str, str]

    @property
    def digest(self) -> str:
        return hashlib.sha256(
            "\n".join(f"{p}={self.parts[p]}" for p in PARTS).encode("ascii")
        ).hexdigest()

    def changed(self, approved: Mapping[str, str]) -> list[str]:
        return [p for p in PARTS if approved.get(p) != self.parts[p]]


def _hash_files(files: Iterable[tuple[str, Path]]) -> str:
    h = hashlib.sha256()
    for name, path in sorted(files):
        h.update(name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _tree(root: Path, label: str) -> list[tuple[str, Path]]:
    return [(f"{label}/{p.relative_to(root)}", p) for p in root.rglob("*") if p.is_file()]


def fingerprint(
    campaign: Campaign, template_folder: Path, templates_root: Path, message: MessageSettings
) -> Fingerprint:
    """The three parts an approval covers; shared layouts (`templates/_*/`) count as templates."""
    files = _tree(template_folder, "campaign")
    if templates_root.is_dir():
        for shared in sorted(templates_root.iterdir()):
            if shared.is_dir() and shared.name.startswith("_"):
                files += _tree(shared, shared.name)
    message_json = json.dumps(message.model_dump(by_alias=True), sort_keys=True, ensure_ascii=False)
    return Fingerprint(
        {
            "campaign_file": hashlib.sha256(campaign.path.read_bytes()).hexdigest(),
            "templates": _hash_files(files),
            "message": hashlib.sha256(message_json.encode("utf-8")).hexdigest(),
        }
    )


def counts_of(summary: Summary) -> dict[str, dict[str, int]]:
    """audience → decision → candidates, as `approve` prints and records them."""
    counts: dict[str, dict[str, int]] = {}
    for (audience, decision), n in sorted(summary.by_audience.items()):
        counts.setdefault(audience, {})[decision] = n
    return counts


def drifts(
    approved: Mapping[str, Mapping[str, int]],
    now: Mapping[str, Mapping[str, int]],
    max_percent: float,
) -> list[str]:
    """Each audience whose `send` count moved more than `max_percent` from the approved one."""
    found = []
    for audience in sorted(set(approved) | set(now)):
        before = approved.get(audience, {}).get("send", 0)
        after = now.get(audience, {}).get("send", 0)
        if before == after:
            continue
        percent = abs(after - before) * 100.0 / before if before else float("inf")
        if percent > max_percent:
            shown = f"{percent:.1f}%" if before else _("from none")
            found.append(f"{audience} send {before:,} → {after:,} ({shown})")
    return found


def approve_command(campaign: Campaign, run_key: str, as_of: date) -> str:
    """The command line an operator runs next (printed by `dry-run` and in refusals)."""
    return (
        f"swmail approve --campaign {campaign.id} --run-key {run_key} --as-of {as_of.isoformat()}"
    )


def approve(
    source: sa.Engine,
    ledger: sa.Engine,
    campaign: Campaign,
    fp: Fingerprint,
    *,
    run_key: str,
    as_of: date,
    extra_suppressed: frozenset[str],
    already_sent: frozenset[str],
    in_parallel: bool = True,
) -> tuple[Approval, Summary]:
    """Resolve as `run` would, record the fingerprint with the counts, return both.

    `in_parallel`: settings `database.parallel_count` (`jobs.resolution.parallel`).
    """
    with resolve_campaign(
        source,
        campaign,
        as_of,
        extra_suppressed=extra_suppressed,
        already_sent=already_sent,
        progress=False,
        keep_deliveries=False,  # the counts are what an approval records
        in_parallel=in_parallel,
    ) as resolved:
        summary = resolved.summary
    approval = Approval(
        campaign_id=campaign.id,
        run_key=run_key,
        as_of=as_of,
        fingerprint=fp.digest,
        parts=dict(fp.parts),
        counts=counts_of(summary),
        approved_at=utc_now(),
        approved_by=holder_description(),
    )
    save_approval(ledger, approval)
    return approval, summary


@dataclass(frozen=True, slots=True)
class ApprovalGate:
    """The §9 check for one run, given to the coordinator; it raises ApprovalRefused."""

    source: sa.Engine
    ledger: sa.Engine
    campaign: Campaign
    fingerprint: Fingerprint
    run_key: str
    as_of: date
    extra_suppressed: frozenset[str]
    already_sent: frozenset[str]
    in_parallel: bool = True  # settings `database.parallel_count`

    def check(self, *, frozen: bool) -> None:
        """Refuse unless approved and unchanged; the drift check runs before the freeze only."""
        if not self.campaign.require_approval:
            return
        command = approve_command(self.campaign, self.run_key, self.as_of)
        with self.ledger.connect() as conn:
            approval = get_approval(conn, self.campaign.id, self.run_key)
        where = tr("campaign {campaign} run key {key}", campaign=self.campaign.id, key=self.run_key)
        if approval is None:
            raise ApprovalRefused(
                tr(
                    "{where} needs an approval; check it, then: {command}",
                    where=where,
                    command=command,
                )
            )
        changed = self.fingerprint.changed(approval.parts)
        if changed:
            words = ", ".join(_(_PART_WORDS[p]) for p in changed)
            raise ApprovalRefused(
                tr(
                    "{where}: {words} changed since the approval of {approved_at:%Y-%m-%d %H:%M} "
                    "UTC; check again, then: {command}",
                    where=where,
                    words=words,
                    approved_at=approval.approved_at,
                    command=command,
                )
            )
        if frozen:
            return  # the frozen set was checked when it was frozen and never changes
        with resolve_campaign(
            self.source,
            self.campaign,
            self.as_of,
            extra_suppressed=self.extra_suppressed,
            already_sent=self.already_sent,
            progress=False,
            keep_deliveries=False,  # only the counts are compared
            in_parallel=self.in_parallel,
        ) as resolved:
            now = counts_of(resolved.summary)
        moved = drifts(approval.counts, now, self.campaign.max_drift_percent)
        if moved:
            raise ApprovalRefused(
                tr(
                    "{where}: the send count drifted more than {limit} since the "
                    "approval ({value}); check the data, then: {command}",
                    where=where,
                    limit=f"{self.campaign.max_drift_percent:g}%",  # no "% s" for gettext
                    value="; ".join(moved),
                    command=command,
                )
            )
