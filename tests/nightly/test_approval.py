"""Approval (SPEC §9): refused without one, after a change, on drift; accepted after `approve`."""

from __future__ import annotations

from collections.abc import Callable

from tests.nightly.conftest import Night, lines_of
from tests.run.conftest import numbered_addresses

PEOPLE = numbered_addresses(3)
KEY = ("--run-key", "2026-12-01", "--as-of", "2026-12-01")


def test_refused_without_approval_then_sent_after_it(
    make_night: Callable[..., Night], db_url: str
) -> None:
    night = make_night(db_url)
    path = str(night.campaign("notice", require_approval=True))
    refused = night.swmail("run", "--campaign", path, *KEY)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "Error: campaign notice run key 2026-12-01 needs an approval; check it, then: swmail"
        " approve --campaign notice --run-key 2026-12-01 --as-of 2026-12-01"
    ]
    assert night.received() == {}

    dry = night.swmail("dry-run", "--campaign", path, *KEY, "--out", "check")
    assert dry.returncode == 0, dry.stderr
    assert "next: swmail approve --campaign notice --run-key 2026-12-01 --as-of 2026-12-01" in (
        dry.stdout
    )

    approved = night.swmail("approve", "--campaign", path, *KEY)
    assert approved.returncode == 0, approved.stderr
    assert "customer                send 3" in approved.stdout
    assert "approved by host" in approved.stdout

    sent = night.swmail("run", "--campaign", path, *KEY)
    assert sent.returncode == 0, sent.stderr
    assert night.received() == dict.fromkeys(PEOPLE, 1)


def test_refused_after_a_template_edit_or_a_message_setting_change(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    path = str(night.campaign("notice", require_approval=True))
    assert night.swmail("approve", "--campaign", path, *KEY).returncode == 0
    body = night.templates / "maintenance-notice" / "body.txt.j2"
    body.write_text(body.read_text(encoding="utf-8") + "\n追記しました。\n", encoding="utf-8")
    edited = night.swmail("run", "--campaign", path, *KEY)
    assert edited.returncode == 2
    assert "the templates changed since the approval" in edited.stderr

    assert night.swmail("approve", "--campaign", path, *KEY).returncode == 0
    other_reply_to = night.swmail(
        "run", "--campaign", path, *KEY, SWMAIL_MESSAGE_REPLY_TO="other@smileworks.example.jp"
    )
    assert other_reply_to.returncode == 2
    assert "the [message] settings changed" in other_reply_to.stderr
    assert night.received() == {}

    sent = night.swmail("run", "--campaign", path, *KEY)
    assert sent.returncode == 0, sent.stderr
    assert night.received() == dict.fromkeys(PEOPLE, 1)


def test_refused_on_drift_by_run_and_by_nightly(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url, people=10)
    path = str(
        night.campaign(
            "notice",
            require_approval=True,
            max_drift_percent=10,
            schedule="2026-12-01T08:00:00+09:00",
        )
    )
    assert night.swmail("approve", "--campaign", path, *KEY).returncode == 0
    night.reimport(numbered_addresses(12))  # 10 → 12 sends: 20% > 10%
    by_run = night.swmail("run", "--campaign", path, *KEY)
    assert by_run.returncode == 2
    assert "drifted more than 10% since the approval (customer send 10 → 12 (20.0%))" in (
        by_run.stderr
    )
    by_nightly = night.nightly("2026-12-01T09:00:00+09:00")
    assert by_nightly.returncode == 2
    state, detail = lines_of(by_nightly)["notice"]
    assert state == "refused" and "drifted" in detail
    assert night.received() == {}

    night.reimport(numbered_addresses(11))  # 10 → 11: 10% is within the limit
    accepted = night.nightly("2026-12-01T09:30:00+09:00")
    assert accepted.returncode == 0, accepted.stderr
    assert lines_of(accepted)["notice"][0] == "sent"
    assert night.received() == dict.fromkeys(numbered_addresses(11), 1)
