"""No accidental resend (SPEC §4 ALREADY_SENT): a one-off campaign run again sends nothing twice."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.nightly.conftest import Night
from tests.run.conftest import numbered_addresses, read_csv

PEOPLE = numbered_addresses(3)


def test_a_one_off_campaign_run_again_on_another_day_sends_nothing_twice(
    make_night: Callable[..., Night], db_url: str
) -> None:
    night = make_night(db_url)
    path = str(night.campaign("notice"))
    first = night.swmail("run", "--campaign", path, "--as-of", "2026-12-01")
    assert first.returncode == 0, first.stderr
    assert night.received() == dict.fromkeys(PEOPLE, 1)

    again = night.swmail("run", "--campaign", path, "--as-of", "2026-12-02")
    assert again.returncode == 0, again.stderr
    assert "→ 0 deliveries" in again.stdout
    assert "ALREADY_SENT                  3" in again.stdout
    assert night.received() == dict.fromkeys(PEOPLE, 1)

    audit_file = night.site.workdir / "audit.csv"
    exported = night.swmail(
        "audit", "export", "--run", "notice/2026-12-02", "--out", str(audit_file)
    )
    assert exported.returncode == 0, exported.stderr
    rows = read_csv(audit_file)
    assert [(r["decision"], r["reasons"], r["status"]) for r in rows] == [
        ("skip", "ALREADY_SENT", "")
    ] * 3

    explained = night.swmail(
        "explain", "--campaign", path, "--as-of", "2026-12-03", "--email", PEOPLE[0], "--json"
    )
    assert explained.returncode == 0, explained.stderr
    (person,) = json.loads(explained.stdout)["people"]
    assert (person["decision"], person["reasons"]) == ("skip", ["ALREADY_SENT"])
    assert "already sent" in person["because"][0]

    dry = night.swmail(
        "dry-run", "--campaign", path, "--as-of", "2026-12-03", "--out", str(night.site.workdir)
    )
    assert dry.returncode == 0, dry.stderr
    dry_rows = read_csv(night.site.workdir / "audit.csv")
    assert {r["reasons"] for r in dry_rows} == {"ALREADY_SENT"}

    resent = night.swmail("run", "--campaign", path, "--as-of", "2026-12-04", "--resend")
    assert resent.returncode == 0, resent.stderr
    assert night.received() == dict.fromkeys(PEOPLE, 2)


def test_a_new_person_still_receives_a_one_off_run_again(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    path = str(night.campaign("notice"))
    assert night.swmail("run", "--campaign", path, "--as-of", "2026-12-01").returncode == 0
    night.reimport(numbered_addresses(4))
    again = night.swmail("run", "--campaign", path, "--as-of", "2026-12-02")
    assert again.returncode == 0, again.stderr
    assert night.received() == dict.fromkeys(numbered_addresses(4), 1)
