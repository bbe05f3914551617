"""Campaign schedules (SPEC §8 `schedule`, §9 `nightly`): one-offs and at-most-daily crons.

Everything about time for `nightly` lives here, so that "when is this campaign due" has one
answer: parsing (an ISO-8601 date-time with offset, or five cron fields in Asia/Tokyo), the
latest occurrence at or before a given moment, its run key (the occurrence's date in Tokyo) and
how late it is. The clock is never read: `now` is always a parameter (`nightly --now` replays it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from jobs.i18n import _, tr

__all__ = ["TOKYO", "Schedule", "lateness", "occurrence_date", "parse_schedule", "run_key_of"]

TOKYO = ZoneInfo("Asia/Tokyo")
# A fixed reference for the "more than once a day" check: any day that fires, fires at the same
# minutes and hours (the day fields only choose days), and Tokyo has no daylight saving time.
_REFERENCE = datetime(2026, 1, 1, tzinfo=TOKYO)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed `schedule`: exactly one of `at` (one-off) and `cron` (recurring) is set."""

    text: str
    at: datetime | None = None  # aware
    cron: str | None = None

    @property
    def recurring(self) -> bool:
        """A cron schedule; SPEC §4: only non-recurring campaigns use ALREADY_SENT."""
        return self.cron is not None

    def latest(self, now: datetime) -> datetime | None:
        """The latest occurrence at or before `now`, in Asia/Tokyo; None before the first."""
        if self.at is not None:
            return self.at.astimezone(TOKYO) if self.at <= now else None
        assert self.cron is not None
        # cronsim's reverse iteration excludes its start: start one second later to include `now`
        start = now.astimezone(TOKYO).replace(microsecond=0) + timedelta(seconds=1)
        return next(iter(CronSim(self.cron, start, reverse=True)), None)

    def following(self, now: datetime) -> datetime | None:
        """The first occurrence after `now`, for the "not due" line; None when there is none."""
        if self.at is not None:
            return self.at.astimezone(TOKYO) if self.at > now else None
        assert self.cron is not None
        return next(iter(CronSim(self.cron, now.astimezone(TOKYO).replace(microsecond=0))), None)


def run_key_of(occurrence: datetime) -> str:
    """§9: an occurrence's run key is its date in Asia/Tokyo."""
    return occurrence_date(occurrence).isoformat()


def occurrence_date(occurrence: datetime) -> date:
    """The as-of date of an occurrence's run: its date in Asia/Tokyo."""
    return occurrence.astimezone(TOKYO).date()


def lateness(occurrence: datetime, now: datetime) -> timedelta:
    """How long ago the occurrence was (zero or more)."""
    return max(now - occurrence, timedelta(0))


def _parse_cron(text: str) -> Schedule:
    try:
        upcoming = list(islice(CronSim(text, _REFERENCE), 2))
    except (CronSimError, ValueError) as exc:
        raise ValueError(
            tr("{text!r} is not a valid cron expression: {exc}", text=text, exc=exc)
        ) from None
    if not upcoming:
        raise ValueError(tr("the cron expression {text!r} never fires", text=text))
    if len(upcoming) == 2 and upcoming[0].date() == upcoming[1].date():
        # §9: each occurrence's run key is its date, so two a day would share one run
        raise ValueError(
            tr(
                "the cron expression {text!r} fires more than once a day (at {upcoming:%H:%M} and "
                "{upcoming2:%H:%M}); nightly campaigns run at most daily",
                text=text,
                upcoming=upcoming[0],
                upcoming2=upcoming[1],
            )
        )
    return Schedule(text=text, cron=text)


def parse_schedule(value: Any) -> Schedule | None:
    """Check a campaign file's `schedule` value; None when the campaign has no schedule.

    One-off: an ISO-8601 date-time WITH offset (TOML may already have parsed it). Recurring:
    exactly five cron fields, read in Asia/Tokyo, firing at most once a day. A ValueError says
    what is wrong; the campaign loader adds the file and the key.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(_("a one-off schedule needs an offset, e.g. +09:00"))
        return Schedule(text=value.isoformat(), at=value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_("must be an ISO-8601 date-time with offset or a cron expression"))
    text = value.strip()
    if len(text.split()) == 5:
        return _parse_cron(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            tr(
                "{text!r} is neither an ISO-8601 date-time nor a five-field cron expression",
                text=text,
            )
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(tr("a one-off schedule needs an offset, e.g. {text}+09:00", text=text))
    return Schedule(text=text, at=parsed)
