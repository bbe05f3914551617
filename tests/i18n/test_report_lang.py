"""Issue 11: the morning report (`report --run`) in the operator's language.

Every label goes through the catalog: in en no Japanese word is left, in ja no English sentence
(data excepted: addresses, SMTP replies as received, codes). What scripts read stays the same in
both languages: every `data-count` figure, the public codes beside the labels, the codes and
accounts of the warnings list.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest

from jobs.i18n import set_language
from jobs.ledger import RunRecord, RunStats
from jobs.reports.morning import (
    AUDIENCE_LABELS,
    DECISIONS,
    REASON_LABELS,
    STATUS_LABELS,
    WARNING_LABELS,
    MorningReport,
    render_html,
)
from resolver.model import DedupeMode, DeliveryStatus
from tests.i18n.test_explain_ja import JAPANESE, english_left

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
# data shown as received, in whatever language it came: not a label
REPLY = "550 5.1.1 <gone@example.jp>: Recipient address rejected: User unknown"
OTHER_REPLY = "451 4.3.0 try again later"
DETAIL = "Address ｔａｒｏ@example.jp of user u1 of C0000001 was normalized to taro@example.jp."
DATA = (REPLY, OTHER_REPLY)


class _Page(HTMLParser):
    """The text a person reads (data cells and codes apart), the figures and codes scripts read."""

    def __init__(self) -> None:
        super().__init__()
        self.lang = ""
        self.words: list[str] = []
        self.counts: dict[str, str] = {}
        self.codes: list[str] = []
        self._stack: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang") or ""
        if values.get("aria-label"):
            self.words.append(values["aria-label"] or "")
        if tag not in {"br", "meta"}:  # the void elements this page uses
            self._stack.append((tag, values))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self._stack:
            return
        tag, values = self._stack[-1]
        if tag == "style":
            return
        if values.get("data-count"):
            self.counts[values["data-count"] or ""] = data
        elif tag == "code" or values.get("class") == "code":
            self.codes.append(data)
        else:
            self.words.append(data)


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    return parsed


def _run() -> RunRecord:
    return RunRecord(
        pk=1,
        run_id="maintenance-notice/2026-12-01",
        campaign_id="maintenance-notice",
        run_key="2026-12-01",
        as_of=date(2026, 12, 1),
        dedupe=DedupeMode.ADDRESS,
        template="maintenance-notice",
        created_at=START,
        resolved_at=START,
        finished_at=None,
        candidates=120,
        sends=60,
        merged=10,
        skips=50,
        deliveries=60,
        warnings=70,
        coordinator=None,
        pass_no=2,
    )


def _report() -> MorningReport:
    """Every label of the page at least once: each audience, decision, reason, status, warning."""
    statuses = {s: 10 for s in DeliveryStatus}
    report = MorningReport(
        run=_run(),
        stats=RunStats(counts=statuses, unconfirmed=1, possible_duplicate=1),
        finished=False,
    )
    for i, audience in enumerate(AUDIENCE_LABELS):
        for j, decision in enumerate(DECISIONS):
            report.by_audience[(audience, decision)] = 1 + i + j
    report.reasons = Counter({code: n + 1 for n, code in enumerate(REASON_LABELS)})
    report.replies = [
        (DeliveryStatus.FAILED, "550", REPLY, 3, 10),
        (DeliveryStatus.DEFERRED, "451", OTHER_REPLY, 1, 10),
    ]
    report.sent_times = [START + timedelta(seconds=i) for i in range(30)]
    report.warning_counts = Counter({code: 30 for code in WARNING_LABELS})
    report.warnings = [("EMAIL_NORMALIZED", "C0000001", DETAIL)]
    report.bounces = [("gone@example.jp", "550", REPLY)]
    return report


@pytest.fixture
def pages() -> Iterator[dict[str, str]]:
    report = _report()
    found = {}
    for language in ("en", "ja"):
        set_language(language)
        found[language] = render_html(report, generated=START + timedelta(hours=1))
    yield found
    set_language("en")


def _text(parsed: _Page) -> str:
    text = "\n".join(parsed.words)
    for data in DATA:
        text = text.replace(data, " ")
    return text


def test_the_english_report_has_no_japanese_label(pages: dict[str, str]) -> None:
    parsed = _parse(pages["en"])
    assert parsed.lang == "en"
    left = [w for w in parsed.words if JAPANESE.search(w)]
    assert not left, left
    assert "Delivery report maintenance-notice/2026-12-01" in pages["en"]
    assert "as of 2026-12-01" in pages["en"]


def test_the_japanese_report_has_no_english_label(pages: dict[str, str]) -> None:
    parsed = _parse(pages["ja"])
    assert parsed.lang == "ja"
    text = _text(parsed)
    assert not english_left(text), english_left(text)
    # every label of every code, translated (none falls back to its English message id)
    for labels in (AUDIENCE_LABELS, REASON_LABELS, STATUS_LABELS, WARNING_LABELS):
        for label in labels.values():
            assert label not in parsed.words, label
    page = pages["ja"]
    assert "配信レポート maintenance-notice/2026-12-01" in page
    assert "基準日 2026年12月1日" in page  # dates the Japanese way
    assert "2026年12月1日 09:00:00 JST" in page
    assert "未完了: 残り30件" in page and "送信パス 2回" in page
    assert "配信停止リストに追加: " in page
    # a warning's sentence is for a person: in Japanese, as in warnings.csv
    assert "正規化" in text and "was normalized" not in page


def test_what_scripts_read_is_the_same_in_both_languages(pages: dict[str, str]) -> None:
    en, ja = _parse(pages["en"]), _parse(pages["ja"])
    assert en.counts == ja.counts
    assert len(en.counts) > 50  # every table's figures, the cards and the bounces
    assert en.counts["bounces"] == ja.counts["bounces"] == "1"
    assert en.codes == ja.codes  # codes, accounts, addresses, reply codes
    assert {"finished", "open"} & set(en.codes) == {"open"}
    for code in (*REASON_LABELS, *WARNING_LABELS, *(s.value for s in DeliveryStatus)):
        assert code in en.codes, code
    # the figures are plain numbers (scripts parse them), never `40件`
    assert all(re.fullmatch(r"[\d,]+", n) for n in ja.counts.values())
