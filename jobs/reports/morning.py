"""`report --run RUN_ID --out FILE.html` (SPEC §9): the morning view of one run, in one file.

Read by the SmileWorks office in the morning, often forwarded as an attachment: so it is one
self-contained page (inline CSS and SVG, no script, no font or image fetched), UTF-8 with
`lang="ja"` and a Japanese font stack, labels in Japanese with the public codes beside them.
Every number comes from the ledger; counts carry a `data-count` attribute so that tests and
scripts read the same figures a person sees.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

import sqlalchemy as sa

from jobs.files import write_private_bytes
from jobs.ledger import RunRecord, RunStats, check_ledger, run_is_finished, stats
from jobs.ledger.models import AuditRowRow, DeliveryRow, SuppressionRow, WarningRow
from jobs.messages.compose import TOKYO
from jobs.reports.status import find_run
from resolver.model import DeliveryStatus, split_reasons

__all__ = ["MorningReport", "gather", "render_html", "write_report"]

AUDIENCE_JA = {
    "customer": "顧客",
    "partner": "パートナー",
    "implementation_partner": "導入支援パートナー",
}
DECISION_JA = {"send": "送信", "merged": "統合（同一宛先）", "skip": "対象外"}
DECISIONS = ("send", "merged", "skip")
STATUS_JA = {
    DeliveryStatus.PENDING: "未送信",
    DeliveryStatus.SENDING: "送信中",
    DeliveryStatus.SENT: "送信済み",
    DeliveryStatus.DEFERRED: "保留（次回再送）",
    DeliveryStatus.FAILED: "失敗",
    DeliveryStatus.BOUNCED: "不達（後から届いたバウンス）",
}
WARNING_JA = {
    "EMAIL_NORMALIZED": "アドレスを正規化（全角など）",
    "UNREACHABLE_CUSTOMER": "届く宛先がない直販顧客",
    "ADMIN_AFTER_CUTOFF": "2019-09-24以降の申込なのに admin がある",
    "HEADER_SANITIZED": "氏名から制御文字を除去",
}
REASON_JA = {
    "RESELLER_CHANNEL": "販売代理店経由の顧客",
    "CONTRACT_ENDED": "契約終了",
    "GROUP_ACCOUNT": "グループアカウント",
    "USER_NOT_ACTIVE": "ユーザーが無効",
    "PARTNER_NOT_ACTIVE": "パートナー契約終了",
    "CONTACT_NOT_ACTIVE": "担当者が無効",
    "CERTIFICATION_EXPIRED": "認定期限切れ",
    "MISSING_EMAIL": "メールアドレスなし",
    "INVALID_EMAIL": "メールアドレスが不正",
    "SUPPRESSED": "配信停止リスト",
    "ALREADY_SENT": "前回の実行で送信済み",
    "MYPAGE_CONTACT": "マイページ登録の連絡先",
    "SYSTEM_ADMIN": "システム管理者",
    "LEGACY_ADMIN": "admin ユーザー",
    "PARTNER_CONTACT": "パートナー担当者",
    "CERTIFIED_IMPLEMENTER": "導入支援認定者",
    "DUPLICATE_ADDRESS": "同一アドレスに統合",
}
MAX_LISTED = 50  # warnings and bounces listed one by one; the counts cover all of them
# Bar widths of the rate chart: the smallest that keeps the chart within MAX_BARS bars.
BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
MAX_BARS = 60


@dataclass
class MorningReport:
    """Everything the page shows, read from the ledger in one snapshot."""

    run: RunRecord
    stats: RunStats
    finished: bool
    by_audience: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    # status, reply code, an example reply text, how many different texts, deliveries
    replies: list[tuple[DeliveryStatus, str, str, int, int]] = field(default_factory=list)
    sent_times: list[datetime] = field(default_factory=list)
    warning_counts: Counter[str] = field(default_factory=Counter)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # code, account, detail
    bounces: list[tuple[str, str, str]] = field(default_factory=list)  # email, code, text


def gather(conn: sa.Connection, run: RunRecord) -> MorningReport:
    """Read the run's counts, replies, send times, warnings and bounces."""
    report = MorningReport(run=run, stats=stats(conn, run), finished=run_is_finished(conn, run))
    for audience, decision, reasons, n in conn.execute(
        sa.select(AuditRowRow.audience, AuditRowRow.decision, AuditRowRow.reasons, sa.func.count())
        .where(AuditRowRow.run_pk == run.pk)
        .group_by(AuditRowRow.audience, AuditRowRow.decision, AuditRowRow.reasons)
    ):
        report.by_audience[(audience.value, decision.value)] += n
        for code in split_reasons(reasons):
            report.reasons[code.value] += n
    # One row per status and reply code: reply texts often name the address, so they are
    # shown as one example and the number of different texts, not one row each
    report.replies = [
        (status, "" if code is None else str(code), text or "", variants, n)
        for status, code, text, variants, n in conn.execute(
            sa.select(
                DeliveryRow.status,
                DeliveryRow.last_smtp_code,
                sa.func.min(DeliveryRow.last_error),
                sa.func.count(sa.distinct(DeliveryRow.last_error)),
                sa.func.count(),
            )
            .where(DeliveryRow.run_pk == run.pk, DeliveryRow.attempts > 0)
            .group_by(DeliveryRow.status, DeliveryRow.last_smtp_code)
            .order_by(sa.func.count().desc())
            .limit(MAX_LISTED)
        )
    ]
    report.sent_times = [
        t
        for t in conn.execute(
            sa.select(DeliveryRow.sent_at).where(
                DeliveryRow.run_pk == run.pk, DeliveryRow.sent_at.is_not(None)
            )
        ).scalars()
        if t is not None
    ]
    for warning_code, n in conn.execute(
        sa.select(WarningRow.code, sa.func.count())
        .where(WarningRow.run_pk == run.pk)
        .group_by(WarningRow.code)
    ):
        report.warning_counts[warning_code.value] = n
    report.warnings = [
        (code.value, account_id, detail)
        for code, account_id, detail in conn.execute(
            sa.select(WarningRow.code, WarningRow.account_id, WarningRow.detail)
            .where(WarningRow.run_pk == run.pk)
            .order_by(WarningRow.warning_no)
            .limit(MAX_LISTED)
        )
    ]
    report.bounces = [
        (email, "" if code is None else str(code), text or "")
        for email, code, text in conn.execute(
            sa.select(SuppressionRow.email, SuppressionRow.smtp_code, SuppressionRow.smtp_text)
            .where(SuppressionRow.run_id == run.run_id)
            .order_by(SuppressionRow.email)
        )
    ]
    return report


# --- HTML -----------------------------------------------------------------------------------------

_CSS = """
body { font-family: "Hiragino Kaku Gothic ProN", "Hiragino Sans", "Noto Sans CJK JP",
  "Noto Sans JP", "Yu Gothic", YuGothic, Meiryo, "IPAexGothic", "IPAPGothic", "IPAGothic",
  sans-serif;
  color: #1f2933; margin: 24px auto; max-width: 1100px; padding: 0 16px; line-height: 1.6; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; border-left: 6px solid #2f6fb3; padding-left: 8px; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #c8d1dc; padding: 4px 10px; vertical-align: top; }
th { background: #eef3f8; text-align: left; font-weight: 600; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, .code { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.85em;
  color: #52606d; }
.state { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600; }
.ok { background: #d9f2e3; color: #135c32; } .open { background: #fdeccf; color: #7a4a00; }
.muted { color: #7b8794; font-size: 0.9em; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid #c8d1dc; border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.card .n { font-size: 1.6em; font-weight: 700; display: block; }
.card.alert { border-color: #c0392b; background: #fdecea; color: #8e1b10; }
svg text { font-family: inherit; font-size: 12px; fill: #52606d; }
"""


def _label(ja: str, code: str) -> str:
    return f'{escape(ja)} <span class="code">{escape(code)}</span>'


def _n(key: str, value: int) -> str:
    return f'<td class="n" data-count="{escape(key)}">{value:,}</td>'


def _jst(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S JST")


def _table(head: Sequence[str], rows: Iterable[str]) -> str:
    cells = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _audience_table(r: MorningReport) -> str:
    audiences = [a for a in AUDIENCE_JA if any(r.by_audience[(a, d)] for d in DECISIONS)]
    rows = []
    for a in audiences:
        total = sum(r.by_audience[(a, d)] for d in DECISIONS)
        cells = "".join(_n(f"audience:{a}:{d}", r.by_audience[(a, d)]) for d in DECISIONS)
        label = f"<th>{_label(AUDIENCE_JA[a], a)}</th>"
        rows.append(f"<tr>{label}{cells}{_n(f'audience:{a}:total', total)}</tr>")
    totals = "".join(
        _n(f"decision:{d}", sum(r.by_audience[(a, d)] for a in AUDIENCE_JA)) for d in DECISIONS
    )
    rows.append(f"<tr><th>合計</th>{totals}{_n('candidates', sum(r.by_audience.values()))}</tr>")
    head = ["宛先区分", *(_label(DECISION_JA[d], d) for d in DECISIONS), "計"]
    return _table(head, rows)


def _reason_table(r: MorningReport) -> str:
    order = list(REASON_JA)
    rows = [
        f"<tr><th>{_label(REASON_JA.get(code, code), code)}</th>{_n(f'reason:{code}', n)}</tr>"
        for code, n in sorted(
            r.reasons.items(),
            key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order),
        )
    ]
    return _table(["理由コード", "件数"], rows)


def _status_table(r: MorningReport) -> str:
    rows = [
        f"<tr><th>{_label(STATUS_JA[s], s.value)}</th>{_n(f'status:{s.value}', r.stats[s])}</tr>"
        for s in DeliveryStatus
    ]
    rows.append(f"<tr><th>合計</th>{_n('deliveries', r.stats.total)}</tr>")
    return _table(["状態", "配信数"], rows)


def _replies_table(r: MorningReport) -> str:
    if not r.replies:
        return '<p class="muted">SMTPサーバーとのやり取りはまだありません。</p>'
    rows = [
        f"<tr><td>{_label(STATUS_JA[s], s.value)}</td><td><code>{escape(code)}</code></td>"
        f"<td>{escape(text[:200])}"
        + (
            f'<br><span class="muted">ほか {variants - 1:,} 種類の応答</span>'
            if variants > 1
            else ""
        )
        + f"</td>{_n(f'reply:{s.value}:{code}', n)}</tr>"
        for s, code, text, variants, n in r.replies
    ]
    return _table(["状態", "応答コード", "最後の応答・エラー（例）", "配信数"], rows)


def rate_buckets(times: Sequence[datetime]) -> tuple[datetime, int, list[int]]:
    """Start, bucket width in seconds and messages per bucket, at most MAX_BARS buckets."""
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    width = next((b for b in BUCKETS if span / b < MAX_BARS), BUCKETS[-1])
    counts = [0] * (int(span // width) + 1)
    for t in times:
        counts[int((t - start).total_seconds() // width)] += 1
    return start, width, counts


def _rate_chart(r: MorningReport) -> str:
    if not r.sent_times:
        return '<p class="muted">送信済みのメッセージはまだありません。</p>'
    start, width, counts = rate_buckets(r.sent_times)
    rates = [n / width for n in counts]
    top = max(rates) or 1.0
    scale = 10 ** math.floor(math.log10(top))
    ceiling = math.ceil(top / scale) * scale
    w, h, left, bottom, top_pad = 960, 280, 64, 40, 32
    plot_w, plot_h = w - left - 16, h - bottom - top_pad
    bar_w = plot_w / len(rates)
    parts = [
        f'<svg role="img" aria-label="送信速度の推移" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}">',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
        'stroke="#9aa5b1"/>',
    ]
    for i in range(5):
        value = ceiling * i / 4
        y = top_pad + plot_h - plot_h * value / ceiling
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e4e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.4g}</text>'
        )
    for i, rate in enumerate(rates):
        bar_h = plot_h * rate / ceiling
        x = left + i * bar_w
        moment = start + timedelta(seconds=i * width)
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top_pad + plot_h - bar_h:.1f}" '
            f'width="{max(bar_w - 2, 1):.1f}" height="{bar_h:.1f}" fill="#2f6fb3">'
            f"<title>{_jst(moment)}: {counts[i]:,} 通 ({rate:,.1f} 通/秒)</title></rect>"
        )
    end = start + timedelta(seconds=len(rates) * width)
    parts.append(
        f'<text x="{left}" y="{h - 12}">{_jst(start)}</text>'
        f'<text x="{left + plot_w}" y="{h - 12}" text-anchor="end">{_jst(end)}</text>'
        f'<text x="{left - 6}" y="{top_pad - 16}" text-anchor="end">通/秒</text>'
        "</svg>"
    )
    caption = (
        f'<p class="muted">棒1本 = {width:,} 秒。最大 {max(rates):,.1f} 通/秒、'
        f"送信済み {len(r.sent_times):,} 通。</p>"
    )
    return "".join(parts) + caption


def _warnings_section(r: MorningReport) -> str:
    if not r.warning_counts:
        return '<p class="muted">警告はありません。</p>'
    counts = _table(
        ["警告コード", "件数"],
        (
            f"<tr><th>{_label(WARNING_JA.get(c, c), c)}</th>{_n(f'warning:{c}', n)}</tr>"
            for c, n in sorted(r.warning_counts.items())
        ),
    )
    listed = _table(
        ["コード", "アカウント", "内容"],
        (
            f"<tr><td><code>{escape(c)}</code></td><td><code>{escape(a)}</code></td>"
            f"<td>{escape(d)}</td></tr>"
            for c, a, d in r.warnings
        ),
    )
    more = sum(r.warning_counts.values()) - len(r.warnings)
    note = f'<p class="muted">ほか {more:,} 件は warnings.csv を参照。</p>' if more > 0 else ""
    return counts + listed + note


def _bounces_section(r: MorningReport) -> str:
    if not r.bounces:
        return '<p class="muted">この実行で配信停止リストに追加されたアドレスはありません。</p>'
    rows = (
        f"<tr><td><code>{escape(e)}</code></td><td><code>{escape(c)}</code></td>"
        f"<td>{escape(t[:200])}</td></tr>"
        for e, c, t in r.bounces
    )
    return f'<p>配信停止リストに追加: <b data-count="bounces">{len(r.bounces):,}</b> 件</p>' + (
        _table(["アドレス", "応答コード", "応答"], rows)
    )


def render_html(r: MorningReport, *, generated: datetime) -> str:
    """The whole page as one string (UTF-8 when written)."""
    run = r.run
    state = (
        '<span class="state ok">完了 finished</span>'
        if r.finished
        else f'<span class="state open">未完了 open: 残り {r.stats.open:,} 件</span>'
    )
    cards = "".join(
        f'<div class="card{" alert" if alarming and value else ""}">'
        f'<span class="n" data-count="card:{key}">{value:,}</span>{label}</div>'
        for key, label, value, alarming in (
            ("candidates", "候補者", run.candidates, False),
            ("deliveries", "配信（宛先）", r.stats.total, False),
            *(
                (s.value, label, r.stats[s], s is not DeliveryStatus.SENT)
                for s, label in (
                    (DeliveryStatus.SENT, "送信済み"),
                    (DeliveryStatus.DEFERRED, "保留"),
                    (DeliveryStatus.FAILED, "失敗"),
                    (DeliveryStatus.BOUNCED, "バウンス"),
                )
            ),
        )
    )
    # What the morning reader checks first (did it go out, what did the relay say) comes first
    sections: Mapping[str, str] = {
        "配信状況": _status_table(r),
        "SMTP応答": _replies_table(r),
        "送信速度の推移": _rate_chart(r),
        "宛先区分・判定別の件数": _audience_table(r),
        "理由コード別の件数": _reason_table(r),
        "警告": _warnings_section(r),
        "バウンス（配信停止リストに追加）": _bounces_section(r),
    }
    body = "".join(f"<h2>{escape(title)}</h2>{html}" for title, html in sections.items())
    title = f"配信レポート {run.run_id}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>キャンペーン <code>{escape(run.campaign_id)}</code> ・ 実行キー "
        f"<code>{escape(run.run_key)}</code> ・ 基準日 {run.as_of.isoformat()} ・ {state}</p>"
        f'<p class="muted">凍結 {_jst(run.resolved_at)} ・ 完了 {_jst(run.finished_at)} ・ '
        f"送信パス {run.pass_no} 回 ・ 再送（クラッシュ後） {r.stats.unconfirmed:,} ・ "
        f"重複の可能性 {r.stats.possible_duplicate:,} ・ 作成 {_jst(generated)}</p>"
        f'<div class="cards">{cards}</div>{body}'
        "</body></html>\n"
    )


def write_report(
    engine: sa.Engine, run_id: str, out: Path, *, generated: datetime
) -> MorningReport:
    """Write the page for RUN_ID to `out` (complete or not at all)."""
    check_ledger(engine)
    with engine.connect() as conn:
        report = gather(conn, find_run(conn, run_id))
    # owner-only and renamed into place (`jobs.files`): the page lists people and addresses
    write_private_bytes(out, render_html(report, generated=generated).encode("utf-8"))
    return report
