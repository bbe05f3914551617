"""`nightly` (SPEC §9): every scheduled campaign that is due, for one cron line.

For each campaign file: the latest occurrence at or before `now` is due unless its run is
finished (a ledger query); it runs exactly as `run` would with run key = the occurrence's date in
Asia/Tokyo, resuming an unfinished run. An occurrence more than `expires_after_hours` late that is
not finished is expired: never started or resumed, recorded once in the ledger. One broken file
or failing campaign never stops the others. One `nightly` per ledger at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from jobs.config.campaign import Campaign, load_campaign
from jobs.config.schedule import (
    TOKYO,
    Schedule,
    lateness,
    occurrence_date,
    parse_schedule,
    run_key_of,
)
from jobs.config.settings import Settings
from jobs.delivery.launch import launch_run
from jobs.errors import ApprovalRefused, ConfigError, MailerError, RunLocked
from jobs.i18n import _, fmt_date, tr
from jobs.ledger import (
    DeliveryStatus,
    acquire_run_lock,
    check_ledger,
    get_run,
    make_run_id,
    record_expired,
    run_is_finished,
)
from jobs.logs import run_context

__all__ = ["NIGHTLY_LOCK", "CampaignLine", "NightlyReport", "State", "run_nightly", "worst"]

log = logging.getLogger(__name__)

NIGHTLY_LOCK = "nightly"  # a lock name no RUN_ID can take: run ids always contain '/'

# SPEC §9: the exit code of a nightly is the worst of its campaigns, in this order
_SEVERITY = {1: 4, 2: 3, 4: 2, 3: 1, 0: 0}


def worst(codes: Sequence[int]) -> int:
    """1 > 2 > 4 > 3 > 0."""
    return max(codes, key=lambda code: _SEVERITY.get(code, 4), default=0)


class State:
    """The word of a summary line (public: cron mail and scripts read them)."""

    NO_SCHEDULE = "no schedule"
    NOT_DUE = "not due"
    SENT = DeliveryStatus.SENT.value  # due, and every delivery is now sent or failed
    DUE = "due"  # ran, deferred deliveries left for the next night
    EXPIRED = "expired"
    REFUSED = "refused"
    BROKEN = "broken"
    LOCKED = "locked"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CampaignLine:
    """One campaign's outcome: its summary line, exit code and whether it needs an alert."""

    name: str  # campaign id, or the file name when the file is broken
    state: str
    detail: str
    exit_code: int = 0
    alert: bool = False
    run_id: str = ""

    def text(self) -> str:
        return f"{self.name:<28} {self.state:<11} {self.detail}".rstrip()


@dataclass
class NightlyReport:
    now: datetime
    lines: list[CampaignLine] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return worst([line.exit_code for line in self.lines])

    @property
    def needs_alert(self) -> bool:
        return any(line.alert for line in self.lines)


def _hours(seconds: float) -> str:
    return tr("{hours:.1f} h", hours=seconds / 3600)


def _at(moment: datetime) -> str:
    local = moment.astimezone(TOKYO)
    return tr("{day} {time} JST", day=fmt_date(local.date()), time=local.strftime("%H:%M"))


def run_nightly(
    settings: Settings,
    source: sa.Engine,
    ledger: sa.Engine,
    campaigns_dir: Path,
    now: datetime,
    *,
    lock_path: Path | None = None,
) -> NightlyReport:
    """Run every due campaign of `campaigns_dir` as of `now` (aware); RunLocked (4) when busy."""
    if not campaigns_dir.is_dir():
        raise ConfigError(tr("{folder}: no such folder of campaign files", folder=campaigns_dir))
    check_ledger(ledger)
    report = NightlyReport(now=now)
    try:
        lock = acquire_run_lock(ledger, NIGHTLY_LOCK, sqlite_path=lock_path)
    except RunLocked as exc:
        holder = exc.holder or _("another process")
        raise RunLocked(
            tr("another nightly is running on this ledger: {holder}", holder=holder),
            holder=holder,
        ) from None
    with lock:
        files = sorted(campaigns_dir.glob("*.toml"))
        if not files:
            # the operator reads it from the CLI, in their language; this is for log tools
            log.info("no campaign files in %s", campaigns_dir)
        for path in files:
            line = _one(settings, source, ledger, path, now)
            with run_context(line.run_id or line.name):
                log.info("%s: %s %s", line.name, line.state, line.detail)
            report.lines.append(line)
    return report


def _one(
    settings: Settings, source: sa.Engine, ledger: sa.Engine, path: Path, now: datetime
) -> CampaignLine:
    try:
        campaign = load_campaign(path)
        schedule = parse_schedule(campaign.schedule)
    except MailerError as exc:
        # §9: a bad file is reported (file and reason) and the others still run
        return CampaignLine(path.name, State.BROKEN, exc.message, exc.exit_code, alert=True)
    if schedule is None:
        return CampaignLine(campaign.id, State.NO_SCHEDULE, _("run by hand only"))
    try:
        return _scheduled(settings, source, ledger, campaign, schedule, now)
    except ApprovalRefused as exc:
        return CampaignLine(campaign.id, State.REFUSED, exc.message, exc.exit_code, alert=True)
    except RunLocked as exc:
        return CampaignLine(campaign.id, State.LOCKED, exc.message, exc.exit_code, alert=True)
    except MailerError as exc:
        return CampaignLine(campaign.id, State.BROKEN, exc.message, exc.exit_code, alert=True)
    except Exception as exc:  # a bug in one campaign must not keep the others from sending
        log.exception("campaign %s failed", campaign.id)
        detail = tr("internal error {kind}: {exc}", kind=type(exc).__name__, exc=exc)
        return CampaignLine(campaign.id, State.ERROR, detail, 1, alert=True)


def _scheduled(
    settings: Settings,
    source: sa.Engine,
    ledger: sa.Engine,
    campaign: Campaign,
    schedule: Schedule,
    now: datetime,
) -> CampaignLine:
    occurrence = schedule.latest(now)
    if occurrence is None:
        upcoming = schedule.following(now)
        when = tr("first occurrence {at}", at=_at(upcoming)) if upcoming else _("no occurrence")
        return CampaignLine(campaign.id, State.NOT_DUE, when)
    run_key = run_key_of(occurrence)
    run_id = make_run_id(campaign.id, run_key)
    with ledger.connect() as conn:
        run = get_run(conn, run_id)
        finished = run is not None and run_is_finished(conn, run)
    if finished:
        upcoming = schedule.following(now)
        nxt = tr("; next {at}", at=_at(upcoming)) if upcoming else ""
        return CampaignLine(
            campaign.id,
            State.NOT_DUE,
            tr("{run_id} finished{next}", run_id=run_id, next=nxt),
            run_id=run_id,
        )
    late = lateness(occurrence, now)
    if late.total_seconds() > campaign.expires_after_hours * 3600:
        first = record_expired(ledger, campaign.id, run_key, occurrence)
        detail = tr(
            "{run_id} scheduled {at}, {late} late (limit {limit:g} h); not sent",
            run_id=run_id,
            at=_at(occurrence),
            late=_hours(late.total_seconds()),
            limit=campaign.expires_after_hours,
        ) + ("" if first else _(" (reported before)"))
        # §9: counted (exit 3) and alerted by the first nightly that finds it only
        return CampaignLine(
            campaign.id, State.EXPIRED, detail, 3 if first else 0, alert=first, run_id=run_id
        )
    with run_context(run_id):
        outcome = launch_run(
            settings,
            source,
            ledger,
            campaign,
            run_key=run_key,
            as_of=occurrence_date(occurrence),
        )
    st = outcome.stats
    counts = tr(
        "sent {sent:,}, failed {failed:,}, deferred {deferred:,}",
        sent=st[DeliveryStatus.SENT],
        failed=st[DeliveryStatus.FAILED],
        deferred=st[DeliveryStatus.DEFERRED],
    )
    verb = "" if outcome.created else _("resumed; ")
    failed_now = outcome.pass_report.failed
    if outcome.exit_code == 0:
        return CampaignLine(
            campaign.id,
            State.SENT,
            f"{run_id} {verb}{counts}",
            alert=failed_now > 0,
            run_id=run_id,
        )
    return CampaignLine(
        campaign.id,
        State.DUE,
        tr(
            "{run_id} {verb}{counts}, {left:,} left for the next night",
            run_id=run_id,
            verb=verb,
            counts=counts,
            left=st.open,
        ),
        outcome.exit_code,
        alert=True,
        run_id=run_id,
    )
