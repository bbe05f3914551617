"""Campaign files (SPEC §8, issue 6 item 3): strict keys and types, one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.config.campaign import load_campaign
from jobs.errors import ConfigError
from resolver.model import Audience, DedupeMode, Plan, Product

BASE = 'id = "notice"\ntemplate = "maintenance-notice"\n'


def campaign_file(tmp_path: Path, text: str, *, bom: bool = False) -> Path:
    path = tmp_path / "notice.toml"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_campaign(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert caught.value.exit_code == 2
    return message


def test_the_smallest_file_takes_the_defaults(tmp_path: Path) -> None:
    campaign = load_campaign(campaign_file(tmp_path, BASE))
    assert campaign.policy.audiences == frozenset(Audience)
    assert campaign.policy.dedupe is DedupeMode.ADDRESS
    assert campaign.policy.plans is None and campaign.policy.products is None
    assert campaign.expires_after_hours == 24 and campaign.schedule is None


def test_every_key_and_a_bom(tmp_path: Path) -> None:
    text = BASE + (
        'audiences = "customer"\ndedupe = "address_per_account"\nexpires_after_hours = 6\n'
        'schedule = "0 10 * * 1"\n[filters]\nplans = ["paid"]\nproducts = ["payroll", "sales"]\n'
    )
    campaign = load_campaign(campaign_file(tmp_path, text, bom=True))
    assert campaign.policy.audiences == {Audience.CUSTOMER}
    assert campaign.policy.dedupe is DedupeMode.ADDRESS_PER_ACCOUNT
    assert campaign.policy.plans == {Plan.PAID}
    assert campaign.policy.products == {Product.PAYROLL, Product.SALES}
    assert campaign.expires_after_hours == 6.0 and campaign.schedule == "0 10 * * 1"


def test_a_one_off_schedule_as_a_toml_date_time(tmp_path: Path) -> None:
    campaign = load_campaign(campaign_file(tmp_path, BASE + "schedule = 2026-12-10T10:00:00+09:00"))
    assert campaign.schedule == "2026-12-10T10:00:00+09:00"


@pytest.mark.parametrize(
    ("extra", "key", "says"),
    [
        ("expires_after_hours = nan", "expires_after_hours", "finite"),
        ("expires_after_hours = inf", "expires_after_hours", "finite"),
        ("expires_after_hours = 0", "expires_after_hours", "greater than 0"),
        ("expires_after_hours = -3", "expires_after_hours", "greater than 0"),
        ("expires_after_hours = true", "expires_after_hours", "valid number"),
        ('expires_after_hours = "24"', "expires_after_hours", "valid number"),
        ('audiences = ["customer", "resellers"]', "audiences.1", "'customer', 'partner'"),
        ("audiences = []", "audiences", "at least 1 item"),
        ('dedupe = "email"', "dedupe", "'address' or 'address_per_account'"),
        ('schedule = "next monday"', "schedule", "neither an ISO-8601 date-time"),
        ('schedule = "2026-12-10T10:00:00"', "schedule", "needs an offset"),
        ("schedule = 2026-12-10T10:00:00", "schedule", "needs an offset"),
        ('colour = "red"', "colour", "unknown key"),
        ('[filters]\nplan = ["paid"]', "filters.plan", "unknown key"),
        ('[filters]\nplans = ["gold"]', "filters.plans.0", "'free' or 'paid'"),
        ("filters = 3", "filters", "must be a table"),
    ],
)
def test_a_bad_key_is_one_line_naming_the_key_and_the_file(
    tmp_path: Path, extra: str, key: str, says: str
) -> None:
    message = refused(campaign_file(tmp_path, BASE + extra + "\n"))
    assert key in message and says in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('template = "t"\n', "id: field required"),
        ('id = "a/b"\ntemplate = "t"\n', "must not contain '/'"),
        ('id = "a b"\ntemplate = "t"\n', "must not contain spaces"),
        ('id = ""\ntemplate = "t"\n', "must not be empty"),
        ('id = "x"\ntemplate = " "\n', "template: must name a template"),
        ('id = "x"\n', "template: field required"),
        ('id = 5\ntemplate = "t"\n', "id: input should be a valid string"),
    ],
)
def test_id_and_template(tmp_path: Path, text: str, says: str) -> None:
    assert says in refused(campaign_file(tmp_path, text))
