"""`nightly` on a replayed clock (SPEC §9): due, not due, expired, resume, broken files, lock."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

from jobs.delivery.nightly import worst
from tests.nightly.conftest import Night, lines_of
from tests.run.conftest import numbered_addresses, wait_until
from tests.smtpd import Stall

PEOPLE = numbered_addresses(3)


def test_worst_exit_code_order() -> None:
    # §9: 1 > 2 > 4 > 3 > 0
    assert worst([0, 3, 4]) == 4
    assert worst([3, 0]) == 3
    assert worst([4, 2, 3]) == 2
    assert worst([2, 1, 0]) == 1
    assert worst([]) == 0


def test_due_not_due_and_expired_occurrences(make_night: Callable[..., Night], db_url: str) -> None:
    night = make_night(db_url)
    night.campaign("daily", schedule="0 6 * * *")
    night.campaign("future", schedule="2026-12-10T10:00:00+09:00")
    night.campaign("stale", schedule="2026-11-28T10:00:00+09:00", expires_after_hours=24)
    night.campaign("manual")

    first = night.nightly("2026-12-01T09:00:00+09:00")
    lines = lines_of(first)
    assert lines["daily"][0] == "sent" and "daily/2026-12-01" in lines["daily"][1]
    assert lines["future"] == ("not due", "first occurrence 2026-12-10 10:00 JST")
    assert lines["stale"][0] == "expired"
    assert "stale/2026-11-28" in lines["stale"][1] and "71.0 h late" in lines["stale"][1]
    assert lines["manual"][0] == "no schedule"
    assert first.returncode == 3, first.stderr  # the expired occurrence, found the first time
    assert night.received() == dict.fromkeys(PEOPLE, 1)  # only `daily` sent

    second = night.nightly("2026-12-01T10:00:00+09:00")
    lines = lines_of(second)
    assert lines["daily"][0] == "not due" and "finished" in lines["daily"][1]
    assert lines["stale"][0] == "expired" and "reported before" in lines["stale"][1]
    assert second.returncode == 0, second.stderr  # listed again, not counted again
    assert night.received() == dict.fromkeys(PEOPLE, 1)


def test_a_recurring_campaign_on_two_days(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("weekly", schedule="30 7 * * *")
    day1 = night.nightly("2026-12-01T08:00:00+09:00")
    assert lines_of(day1)["weekly"][0] == "sent" and day1.returncode == 0
    day2 = night.nightly("2026-12-02T08:00:00+09:00")
    state, detail = lines_of(day2)["weekly"]
    assert (state, day2.returncode) == ("sent", 0)
    assert detail.startswith("weekly/2026-12-02 sent 3,")  # recurring: no ALREADY_SENT
    assert night.received() == dict.fromkeys(PEOPLE, 2)


def test_a_one_off_campaign_runs_once_under_its_tokyo_date(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    # 00:30 in Tokyo is still the 30th in UTC: the run key is the Tokyo date
    night.campaign("oneoff", schedule="2026-12-01T00:30:00+09:00", expires_after_hours=12)
    early = night.nightly("2026-11-30T15:00:00Z")  # = 2026-12-01T00:00 JST
    assert lines_of(early)["oneoff"][0] == "not due" and early.returncode == 0
    due = night.nightly("2026-11-30T15:45:00Z")
    assert lines_of(due)["oneoff"][1].startswith("oneoff/2026-12-01 sent 3")
    later = night.nightly("2026-12-05T09:00:00+09:00")  # long past: finished, never expired
    assert lines_of(later)["oneoff"] == ("not due", "oneoff/2026-12-01 finished")
    assert later.returncode == 0
    assert night.received() == dict.fromkeys(PEOPLE, 1)


def test_a_broken_file_is_reported_and_the_others_still_run(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("good", schedule="0 6 * * *")
    night.campaign("twice", schedule="0 6,18 * * *")
    (night.campaigns / "garbled.toml").write_text("id = \n", encoding="utf-8")
    night.campaign("badcron", schedule="0 6 * * * *")
    result = night.nightly("2026-12-01T09:00:00+09:00")
    lines = lines_of(result)
    assert lines["good"][0] == "sent"
    assert lines["twice.toml"][0] == "broken"
    assert "fires more than once a day" in lines["twice.toml"][1]
    assert lines["garbled.toml"][0] == "broken" and "garbled.toml" in lines["garbled.toml"][1]
    assert lines["badcron.toml"][0] == "broken" and "cron" in lines["badcron.toml"][1]
    assert result.returncode == 2
    assert night.received() == dict.fromkeys(PEOPLE, 1)


def test_nightly_resumes_an_unfinished_run(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("daily", schedule="0 6 * * *")
    night.handler.data_for["person0002@example.jp"] = "451 4.3.0 try again later"
    first = night.nightly("2026-12-01T07:00:00+09:00")
    state, detail = lines_of(first)["daily"]
    assert (state, first.returncode) == ("due", 3)
    assert "deferred 1" in detail and "1 left" in detail
    night.handler.data_for.clear()
    second = night.nightly("2026-12-01T12:00:00+09:00")
    state, detail = lines_of(second)["daily"]
    assert (state, second.returncode) == ("sent", 0)
    assert detail.startswith("daily/2026-12-01 resumed; sent 3")
    assert night.received() == dict.fromkeys(PEOPLE, 1)


def test_run_without_run_key_resumes_the_unfinished_run(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    path = night.campaign("manual")
    night.handler.data_for["person0003@example.jp"] = "451 4.3.0 try again later"
    first = night.swmail("run", "--campaign", str(path), "--as-of", "2026-12-01")
    assert first.returncode == 3, first.stderr
    night.handler.data_for.clear()
    # the next day, without --run-key: the default would be today's date and a new run
    again = night.swmail("run", "--campaign", str(path))
    assert again.returncode == 0, again.stderr
    assert "resuming the unfinished run manual/2026-12-01" in again.stdout
    assert "run manual/2026-12-01 (resumed" in again.stdout
    assert night.received() == dict.fromkeys(PEOPLE, 1)


def test_two_nightly_at_once(make_night: Callable[..., Night], db_url: str) -> None:
    night = make_night(db_url)
    night.campaign("daily", schedule="0 6 * * *")
    # the first nightly holds its lock while the server is slow: long enough for a second
    # interpreter to start on a busy machine
    night.handler.data = Stall(8.0)
    process = night.spawn(
        "nightly", "--now", "2026-12-01T09:00:00+09:00", SWMAIL_SMTP_TIMEOUT_SECONDS="30"
    )
    wait_until(lambda: len(night.handler.bodies) >= 1, 60, "the first nightly to start sending")
    second = night.nightly("2026-12-01T09:00:00+09:00")
    assert second.returncode == 4, second.stderr
    assert "another nightly is running on this ledger" in second.stderr
    assert f"pid {process.pid}" in second.stderr
    assert second.stdout == ""
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert lines_of(subprocess.CompletedProcess([], 0, out, ""))["daily"][0] == "sent"
    assert night.received() == dict.fromkeys(PEOPLE, 1)


def test_a_run_held_by_a_hand_run_is_locked_and_the_others_go_on(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    path = str(night.campaign("daily", schedule="0 6 * * *"))
    night.campaign("other", schedule="0 7 * * *")
    night.handler.data = Stall(8.0)
    by_hand = night.spawn(
        "run", "--campaign", path, "--run-key", "2026-12-01", "--as-of", "2026-12-01",
        SWMAIL_SMTP_TIMEOUT_SECONDS="30",
    )  # fmt: skip
    wait_until(lambda: len(night.handler.bodies) >= 1, 60, "the hand run to start sending")
    night.handler.data = ()
    result = night.nightly("2026-12-01T09:00:00+09:00")
    lines = lines_of(result)
    assert lines["daily"][0] == "locked" and f"pid {by_hand.pid}" in lines["daily"][1]
    assert lines["other"][0] == "sent"
    assert result.returncode == 4
    _, err = by_hand.communicate(timeout=120)
    assert by_hand.returncode == 0, err
    assert night.received() == dict.fromkeys(PEOPLE, 2)  # once per campaign


def test_sigterm_stops_like_ctrl_c_and_the_next_nightly_resumes(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url, people=6)
    night.campaign("daily", schedule="0 6 * * *")
    night.handler.data = Stall(1.0)
    process = night.spawn("nightly", "--now", "2026-12-01T09:00:00+09:00")
    wait_until(lambda: len(night.handler.bodies) >= 1, 60, "the nightly to start sending")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err  # 128 + SIGTERM, as shells report it
    assert "Terminated: what the server confirmed is recorded" in err
    night.handler.data = ()
    again = night.nightly("2026-12-01T09:30:00+09:00")
    assert again.returncode == 0, again.stderr
    assert lines_of(again)["daily"][1].startswith("daily/2026-12-01 resumed; sent 6")
    # §7: only what was on the wire at the stop may arrive twice
    assert set(night.received()) == set(numbered_addresses(6))


def test_a_redirected_night_says_so_on_its_first_line(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    # §10: with redirect_all_to, every run summary says so first; `nightly` is one too
    night = make_night(sqlite_url)
    night.campaign("daily", schedule="0 6 * * *")
    tester = "tester@example.jp"
    done = night.nightly("2026-12-01T09:00:00+09:00", SWMAIL_MESSAGE_REDIRECT_ALL_TO=tester)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(f"REDIRECTED: every message goes to {tester}")
    assert lines_of(done)["daily"][0] == "sent"
    assert night.received() == {tester: len(PEOPLE)}
