"""One run as `run` and `nightly` both start it: composer, ALREADY_SENT input, approval gate.

Both commands must send exactly the same thing for the same (campaign, run key), so everything
they derive from settings and the ledger before the coordinator starts lives in this one place.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.config.settings import Settings
from jobs.delivery.approval import ApprovalGate, fingerprint
from jobs.delivery.coordinator import RunOutcome, run_campaign
from jobs.ledger import already_sent_for, ledger_suppressions
from jobs.messages.compose import Composer
from jobs.messages.render import load_template_set

__all__ = ["approval_gate", "launch_run", "make_composer"]


def make_composer(settings: Settings, campaign: Campaign, run_key: str, as_of: date) -> Composer:
    """The campaign's templates compiled for one run (exit 2 on a broken template)."""
    templates = load_template_set(
        Path(settings.paths.templates), campaign.template, campaign.folder
    )
    return Composer(campaign.id, run_key, as_of, templates, settings.message)


def approval_gate(
    settings: Settings,
    source: sa.Engine,
    ledger: sa.Engine,
    campaign: Campaign,
    composer: Composer,
    already_sent: frozenset[str],
) -> ApprovalGate:
    """The §9 check for this run, with the fingerprint of what would be sent now."""
    return ApprovalGate(
        source=source,
        ledger=ledger,
        campaign=campaign,
        fingerprint=fingerprint(
            campaign, composer.templates.folder, Path(settings.paths.templates), settings.message
        ),
        run_key=composer.run_key,
        as_of=composer.as_of,
        extra_suppressed=ledger_suppressions(ledger),
        already_sent=already_sent,
        in_parallel=settings.database.parallel_count,
    )


def launch_run(
    settings: Settings,
    source: sa.Engine,
    ledger: sa.Engine,
    campaign: Campaign,
    *,
    run_key: str,
    as_of: date,
    resend: bool = False,
    progress: bool = False,
) -> RunOutcome:
    """Check, freeze (first time) and send one run, resuming it when it exists."""
    composer = make_composer(settings, campaign, run_key, as_of)
    already_sent = already_sent_for(ledger, campaign, run_key, resend=resend)
    gate = approval_gate(settings, source, ledger, campaign, composer, already_sent)
    return run_campaign(
        source,
        ledger,
        campaign,
        composer,
        settings.smtp,
        as_of=as_of,
        already_sent=already_sent,
        gate=gate,
        progress=progress,
    )
