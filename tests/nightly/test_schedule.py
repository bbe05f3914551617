"""Schedules (SPEC §8, §9): one-offs and at-most-daily crons in Asia/Tokyo, checked on load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.config.campaign import load_campaign
from jobs.config.schedule import TOKYO, lateness, parse_schedule, run_key_of
from jobs.config.settings import load_settings
from jobs.errors import ConfigError


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


def test_a_daily_cron_is_read_in_tokyo() -> None:
    schedule = parse_schedule("0 9 * * *")
    assert schedule is not None and schedule.recurring
    assert schedule.latest(jst(2026, 12, 1, 9, 0)) == jst(2026, 12, 1, 9, 0)  # at now counts
    assert schedule.latest(jst(2026, 12, 1, 8, 59, 59)) == jst(2026, 11, 30, 9, 0)
    # the same instant given in UTC
    assert schedule.latest(datetime(2026, 12, 1, 0, 30, tzinfo=UTC)) == jst(2026, 12, 1, 9, 0)
    assert schedule.following(jst(2026, 12, 1, 9, 0)) == jst(2026, 12, 2, 9, 0)


def test_a_monthly_cron_and_its_run_key() -> None:
    schedule = parse_schedule("30 0 1 * *")
    assert schedule is not None
    latest = schedule.latest(jst(2026, 12, 15, 12, 0))
    assert latest == jst(2026, 12, 1, 0, 30)
    # 00:30 on the 1st in Tokyo is still November 30th in UTC: the run key is the Tokyo date
    assert latest is not None and run_key_of(latest) == "2026-12-01"
    assert lateness(latest, jst(2026, 12, 1, 2, 30)) == timedelta(hours=2)
    assert lateness(latest, jst(2026, 11, 30, 0, 0)) == timedelta(0)


def test_a_one_off_with_offset() -> None:
    schedule = parse_schedule("2026-12-10T10:00:00+09:00")
    assert schedule is not None and not schedule.recurring
    assert schedule.latest(jst(2026, 12, 10, 9, 59)) is None
    assert schedule.following(jst(2026, 12, 10, 9, 59)) == jst(2026, 12, 10, 10, 0)
    assert schedule.latest(jst(2026, 12, 11)) == jst(2026, 12, 10, 10, 0)
    assert schedule.following(jst(2026, 12, 11)) is None
    # TOML may hand over a datetime already
    assert parse_schedule(jst(2026, 12, 10, 10, 0)) is not None
    assert parse_schedule(None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0 6,18 * * *", "fires more than once a day"),
        ("*/30 9 * * 1", "fires more than once a day"),
        ("0 * * * *", "fires more than once a day"),
        ("61 9 * * *", "not a valid cron expression"),
        ("0 0 30 2 *", "not a valid cron expression"),
        ("0 9 * * * *", "neither an ISO-8601 date-time nor a five-field cron"),
        ("2026-12-10T10:00:00", "needs an offset"),
        (datetime(2026, 12, 10, 10, 0), "needs an offset"),
        ("", "must be an ISO-8601 date-time"),
        (5, "must be an ISO-8601 date-time"),
    ],
)
def test_bad_schedules_are_config_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(value)


def _campaign(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text('id = "c"\ntemplate = "maintenance-notice"\n' + body, encoding="utf-8")
    return path


def test_campaign_files_are_checked_when_they_load(tmp_path: Path) -> None:
    loaded = load_campaign(
        _campaign(
            tmp_path,
            'schedule = "0 9 1 * *"\nrequire_approval = true\nmax_drift_percent = 5\n',
        )
    )
    assert (loaded.schedule, loaded.require_approval, loaded.max_drift_percent) == (
        "0 9 1 * *",
        True,
        5.0,
    )
    defaults = load_campaign(_campaign(tmp_path, ""))
    assert (defaults.require_approval, defaults.max_drift_percent) == (False, 10.0)
    for body, message in (
        ('schedule = "0 9,21 * * *"\n', "c.toml: schedule: the cron expression"),
        ('require_approval = "yes"\n', "c.toml: require_approval: input should be a valid bool"),
        ("max_drift_percent = -1\n", "c.toml: max_drift_percent: input should be greater than"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_campaign(_campaign(tmp_path, body))


def test_alert_addresses_from_the_file_or_the_environment(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('[alerts]\nto = ["ops@example.jp"]\n', encoding="utf-8")
    assert load_settings(settings_file, env={}).alerts.to == ["ops@example.jp"]
    env = {"SWMAIL_ALERTS_TO": "ops@example.jp, lead@example.jp"}
    assert load_settings(settings_file, env=env).alerts.to == ["ops@example.jp", "lead@example.jp"]
    settings_file.write_text('[alerts]\nto = ["not an address"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings.toml: alerts\.to\.0: string should match"):
        load_settings(settings_file, env={})
