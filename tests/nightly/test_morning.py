"""The morning view (SPEC §9): the HTML report parsed, the diff of two runs, alerts, JSON logs."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable
from email.message import EmailMessage
from html.parser import HTMLParser

from tests.i18n.test_explain_ja import JAPANESE
from tests.nightly.conftest import Night, lines_of
from tests.run.conftest import numbered_addresses, read_csv


class _Counts(HTMLParser):
    """Every `data-count` cell of the page, its text read as a number; plus tags and links."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.lang = ""
        self.charset = ""
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang") or ""
        if tag == "meta" and values.get("charset"):
            self.charset = values["charset"] or ""
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(values[name] or "")
        self._open = values.get("data-count")

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.counts[self._open] = int(data.replace(",", ""))
            self._open = None


def test_the_html_report_shows_the_counts_of_the_ledger(
    make_night: Callable[..., Night], db_url: str
) -> None:
    night = make_night(db_url, people=4)
    night.handler.rcpt["person0002@example.jp"] = "550 5.1.1 no such user"
    night.handler.data_for["person0003@example.jp"] = "451 4.3.0 try again later"
    path = str(night.campaign("notice"))
    run = night.swmail("run", "--campaign", path, "--as-of", "2026-12-01")
    assert run.returncode == 3, run.stderr
    out = night.site.workdir / "morning.html"
    written = night.swmail("report", "--run", "notice/2026-12-01", "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert "4 deliveries, 1 open" in written.stdout

    page = out.read_text(encoding="utf-8")
    parsed = _Counts()
    parsed.feed(page)
    assert (parsed.lang, parsed.charset) == ("en", "utf-8")  # issue 11: the operator's language
    assert "Noto Sans CJK JP" in page and "Delivery status" in page
    c = parsed.counts
    in_ja = night.swmail("--lang", "ja", "report", "--run", "notice/2026-12-01", "--out", str(out))
    assert in_ja.returncode == 0, in_ja.stderr
    assert "配信 4件、未完了 1件" in in_ja.stdout
    page_ja = out.read_text(encoding="utf-8")
    parsed_ja = _Counts()
    parsed_ja.feed(page_ja)
    assert parsed_ja.lang == "ja" and "配信状況" in page_ja
    assert parsed_ja.counts == c  # the figures scripts read do not depend on the language
    assert (c["status:sent"], c["status:failed"], c["status:deferred"]) == (2, 1, 1)
    assert (c["status:pending"], c["deliveries"]) == (0, 4)
    assert (c["audience:customer:send"], c["decision:skip"], c["candidates"]) == (4, 0, 4)
    assert c["reason:MYPAGE_CONTACT"] == 4
    assert c["reply:failed:550"] == 1 and c["reply:deferred:451"] == 1
    assert c["bounces"] == 1 and "person0002@example.jp" in page
    # self-contained: an inline chart, no script, nothing fetched
    assert "svg" in parsed.tags and "rect" in parsed.tags
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    assert parsed.urls == [] and "http" not in page


def test_diff_of_two_runs(make_night: Callable[..., Night], sqlite_url: str) -> None:
    night = make_night(sqlite_url)
    path = str(night.campaign("notice"))
    assert night.swmail("run", "--campaign", path, "--as-of", "2026-12-01").returncode == 0
    night.reimport(["person0001@example.jp", "=bad@@example.jp", *numbered_addresses(4)[2:]])
    b = night.swmail("run", "--campaign", path, "--as-of", "2026-12-02", "--resend")
    assert b.returncode == 0, b.stderr

    out = night.site.workdir / "diff.csv"
    forward = night.swmail(
        "diff", "--run", "notice/2026-12-01", "--run", "notice/2026-12-02", "--out", str(out)
    )
    assert forward.returncode == 0, forward.stderr
    assert forward.stdout.splitlines()[-1].endswith("added 1, removed 0, changed 1")
    rows = read_csv(out)
    assert [(r["change"], r["account_id"], r["email"]) for r in rows] == [
        ("changed", "C000000002", "'=bad@@example.jp"),  # §5: formula cells quoted
        ("added", "C000000004", "person0004@example.jp"),
    ]
    assert (rows[0]["decision_a"], rows[0]["reasons_a"]) == ("send", "MYPAGE_CONTACT")
    assert (rows[0]["decision_b"], rows[0]["reasons_b"]) == ("skip", "INVALID_EMAIL")
    assert (rows[1]["decision_a"], rows[1]["decision_b"]) == ("", "send")

    backward = night.swmail("diff", "--run", "notice/2026-12-02", "--run", "notice/2026-12-01")
    assert backward.returncode == 0, backward.stderr
    assert backward.stdout.splitlines()[-1].endswith("added 0, removed 1, changed 1")
    assert any(
        line.startswith("removed  customer C000000004") for line in backward.stdout.splitlines()
    )


def _alerts(night: Night) -> list[EmailMessage]:
    return [
        email.message_from_bytes(m.data, _class=EmailMessage, policy=email.policy.default)
        for m in night.handler.messages
        if "ops@example.jp" in m.rcpt_tos
    ]


def test_an_alert_goes_to_a_real_server_only_when_something_needs_a_person(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("daily", schedule="0 6 * * *")
    well = night.nightly("2026-12-01T09:00:00+09:00", SWMAIL_ALERTS_TO="ops@example.jp")
    assert well.returncode == 0, well.stderr
    assert _alerts(night) == []  # all is well: nothing

    (night.campaigns / "broken.toml").write_text('id = "broken"\n', encoding="utf-8")
    bad = night.nightly(
        "2026-12-02T09:00:00+09:00", SWMAIL_ALERTS_TO="ops@example.jp, lead@example.jp"
    )
    assert bad.returncode == 2
    (alert,) = _alerts(night)
    assert alert["To"] == "ops@example.jp, lead@example.jp"
    assert "1 campaign(s) need attention" in alert["Subject"]
    body = alert.get_content()
    assert "broken.toml" in body and "template: field required" in body
    assert "daily/2026-12-02 sent 3" in body  # the whole night, for context
    assert alert.get_content_type() == "text/plain"


def test_a_failed_delivery_is_alerted_though_the_night_exits_0(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("daily", schedule="0 6 * * *")
    night.handler.rcpt["person0002@example.jp"] = "550 5.1.1 no such user"
    result = night.nightly("2026-12-01T09:00:00+09:00", SWMAIL_ALERTS_TO="ops@example.jp")
    assert result.returncode == 0, result.stderr  # failed is final: the run is done
    assert lines_of(result)["daily"] == ("sent", "daily/2026-12-01 sent 2, failed 1, deferred 0")
    (alert,) = _alerts(night)
    assert "daily/2026-12-01 sent 2, failed 1" in alert.get_content()


def test_an_expired_occurrence_is_alerted_once(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("stale", schedule="2026-11-01T06:00:00+09:00")
    first = night.nightly("2026-12-01T09:00:00+09:00", SWMAIL_ALERTS_TO="ops@example.jp")
    assert first.returncode == 3
    (alert,) = _alerts(night)
    assert "stale/2026-11-01" in alert.get_content() and "expired" in alert.get_content()
    again = night.nightly("2026-12-02T09:00:00+09:00", SWMAIL_ALERTS_TO="ops@example.jp")
    assert again.returncode == 0
    assert lines_of(again)["stale"][0] == "expired"
    assert len(_alerts(night)) == 1  # §9: alerted once


def test_an_alert_that_cannot_be_sent_keeps_the_exit_code(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("stale", schedule="2026-11-01T06:00:00+09:00")
    night.handler.rcpt["ops@example.jp"] = "550 5.1.1 no such user"
    result = night.nightly("2026-12-01T09:00:00+09:00", SWMAIL_ALERTS_TO="ops@example.jp")
    assert result.returncode == 3  # the expired occurrence, not the alert
    assert lines_of(result)["stale"][0] == "expired"
    assert "alert: the alert e-mail was not accepted (failed): 550" in result.stderr


def test_json_logs_carry_the_run_id_and_stdout_is_only_the_summary(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("daily", schedule="0 6 * * *")
    result = night.swmail(
        "--log-format", "json", "-v", "nightly", "--now", "2026-12-01T09:00:00+09:00"
    )
    assert result.returncode == 0, result.stderr
    assert list(lines_of(result)) == ["daily"]  # every stdout line is a summary line
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events, "no log lines at -v"
    run_events = [e for e in events if e["run_id"] == "daily/2026-12-01"]
    assert {e["message"].split(":")[0] for e in run_events} >= {
        "run started (resolving and freezing)",
        "pass finished",
    }
    assert all(set(e) >= {"time", "level", "logger", "message", "run_id"} for e in events)
    assert not any("person0001@example.jp" in e["message"] for e in events)  # -vv only


def test_log_lines_stay_english_while_the_summary_is_japanese(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    """Issue 11: log lines are for developers and log tools (grep, alerts on the message text):
    their words are English whatever the language; stdout and errors follow the language."""
    night = make_night(sqlite_url)
    night.campaign("daily", schedule="0 6 * * *")
    result = night.swmail("--lang", "ja", "-v", "nightly", "--now", "2026-12-01T09:00:00+09:00")
    assert result.returncode == 0, result.stderr
    assert lines_of(result)["daily"] == (
        "sent",
        "daily/2026-12-01 送信済み 3件、失敗 0件、保留 0件",
    )
    logged = result.stderr.splitlines()
    assert logged and all(line.startswith(("INFO ", "DEBUG ", "WARNING ")) for line in logged)
    assert any("run started (resolving and freezing)" in line for line in logged)
    # the one log line that quotes a summary: its own words (name, state code) English, then
    # the detail exactly as the operator read it on stdout
    quoted = "INFO jobs.delivery.nightly: [daily/2026-12-01] daily: sent daily/2026-12-01 送信済み"
    (japanese,) = [line for line in logged if JAPANESE.search(line)]
    assert japanese.startswith(quoted)


def test_an_empty_campaign_folder_is_said_in_the_operators_language(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    """The one thing a default-level log line used to tell an operator now comes from the CLI."""
    night = make_night(sqlite_url)
    result = night.swmail("--lang", "ja", "nightly", "--now", "2026-12-01T09:00:00+09:00")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert (
        result.stderr
        == f"{night.campaigns} にキャンペーンファイルがありません。何もしていません。\n"
    )
    in_en = night.swmail("--lang", "en", "nightly", "--now", "2026-12-01T09:00:00+09:00")
    assert in_en.stderr == f"no campaign files in {night.campaigns}: nothing to do\n"


def test_the_alert_is_written_in_the_operators_language(
    make_night: Callable[..., Night], sqlite_url: str
) -> None:
    night = make_night(sqlite_url)
    night.campaign("stale", schedule="2026-11-01T06:00:00+09:00")
    result = night.swmail(
        "--lang", "ja", "nightly", "--now", "2026-12-01T09:00:00+09:00",
        SWMAIL_ALERTS_TO="ops@example.jp",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    (alert,) = _alerts(night)
    assert alert["Subject"] == (
        "[swmail nightly] 確認が必要なキャンペーン 1件（2026年12月1日 09:00 JST、終了コード 3）"
    )
    body = alert.get_content().splitlines()
    assert body[0] == "swmail nightly（2026-12-01T09:00:00+09:00）は終了コード 3 で終わりました。"
    assert body[2] == "確認が必要なもの:" and body[3].startswith("  stale")
    assert "すべてのキャンペーン:" in body
