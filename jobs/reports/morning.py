"""`report --run RUN_ID --out FILE.html` (SPEC §9): the morning view of one run, in one file.

Read by the SmileWorks office in the morning, often forwarded as an attachment: so it is one
self-contained page (inline CSS and SVG, no script, no font or image fetched), UTF-8 with a
Japanese font stack (the data is Japanese whatever the language). Its labels, dates and the
`lang` attribute follow the operator's language (issue 11, `jobs.i18n`); the public codes stand
beside each label and every count carries a `data-count` attribute, the same in both languages,
so that tests and scripts read the same figures a person sees.
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
from jobs.i18n import N_, _, current_language, fmt_date, localize
from jobs.ledger import RunRecord, RunStats, check_ledger, run_is_finished, stats
from jobs.ledger.models import AuditRowRow, DeliveryRow, SuppressionRow, WarningRow
from jobs.messages.compose import TOKYO
from jobs.reports.status import find_run
from resolver.model import DeliveryStatus, split_reasons
from resolver.warnings import DETAIL_TEMPLATES as WARNING_DETAILS

__all__ = ["MorningReport", "gather", "render_html", "write_report"]

# Labels by public code: English message ids, shown through `_()` when the page is rendered
AUDIENCE_LABELS = {
    "customer": N_("Customer"),
    "partner": N_("Partner"),
    "implementation_partner": N_("Implementation partner"),
}
DECISION_LABELS = {
    "send": N_("Send"),
    "merged": N_("Merged (same address)"),
    "skip": N_("Not sent"),
}
DECISIONS = ("send", "merged", "skip")
STATUS_LABELS = {
    DeliveryStatus.PENDING: N_("Not sent yet"),
    DeliveryStatus.SENDING: N_("Sending"),
    DeliveryStatus.SENT: N_("Sent"),
    DeliveryStatus.DEFERRED: N_("Deferred (retried next pass)"),
    DeliveryStatus.FAILED: N_("Failed"),
    DeliveryStatus.BOUNCED: N_("Bounced (a bounce came back after sending)"),
}
WARNING_LABELS = {
    "EMAIL_NORMALIZED": N_("Address normalized (full-width characters and the like)"),
    "UNREACHABLE_CUSTOMER": N_("Direct customer with no address a message can reach"),
    "ADMIN_AFTER_CUTOFF": N_("An admin user though signed up on or after 2019-09-24"),
    "HEADER_SANITIZED": N_("Control characters removed from a name"),
}
REASON_LABELS = {
    "RESELLER_CHANNEL": N_("Customer of a reseller"),
    "CONTRACT_ENDED": N_("Contract ended"),
    "GROUP_ACCOUNT": N_("Group account"),
    "USER_NOT_ACTIVE": N_("User not active"),
    "PARTNER_NOT_ACTIVE": N_("Partner contract ended"),
    "CONTACT_NOT_ACTIVE": N_("Contact not active"),
    "CERTIFICATION_EXPIRED": N_("Certification expired"),
    "MISSING_EMAIL": N_("No e-mail address"),
    "INVALID_EMAIL": N_("Invalid e-mail address"),
    "SUPPRESSED": N_("On the suppression list"),
    "ALREADY_SENT": N_("Sent by an earlier run"),
    "MYPAGE_CONTACT": N_("Contact registered on My Page"),
    "SYSTEM_ADMIN": N_("System administrator"),
    "LEGACY_ADMIN": N_("Legacy admin user"),
    "PARTNER_CONTACT": N_("Partner contact"),
    "CERTIFIED_IMPLEMENTER": N_("Certified implementer"),
    "DUPLICATE_ADDRESS": N_("Merged into the same address"),
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


def _label(message: str, code: str) -> str:
    """A label in the operator's language, its public code beside it (the same in any)."""
    return f'{escape(_(message))} <span class="code">{escape(code)}</span>'


def _html(message: str, /, **markup: str) -> str:
    """`tr()` for the page: the translated words escaped, the filled-in `markup` (already HTML,
    made by this module from escaped values) kept as it is."""
    return escape(_(message), quote=False).format(**markup)


def _n(key: str, value: int) -> str:
    return f'<td class="n" data-count="{escape(key)}">{value:,}</td>'


def _jst(moment: datetime | None) -> str:
    """A moment in Tokyo time: `2026-12-01 09:00:00 JST`, in ja `2026年12月1日 09:00:00 JST`."""
    if moment is None:
        return "—"
    local = moment.astimezone(TOKYO)
    return f"{fmt_date(local.date())} {local:%H:%M:%S} JST"


def _table(head: Sequence[str], rows: Iterable[str]) -> str:
    cells = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _muted(message: str) -> str:
    return f'<p class="muted">{escape(_(message))}</p>'


def _audience_table(r: MorningReport) -> str:
    audiences = [a for a in AUDIENCE_LABELS if any(r.by_audience[(a, d)] for d in DECISIONS)]
    rows = []
    for a in audiences:
        total = sum(r.by_audience[(a, d)] for d in DECISIONS)
        cells = "".join(_n(f"audience:{a}:{d}", r.by_audience[(a, d)]) for d in DECISIONS)
        label = f"<th>{_label(AUDIENCE_LABELS[a], a)}</th>"
        rows.append(f"<tr>{label}{cells}{_n(f'audience:{a}:total', total)}</tr>")
    totals = "".join(
        _n(f"decision:{d}", sum(r.by_audience[(a, d)] for a in AUDIENCE_LABELS)) for d in DECISIONS
    )
    total_label = escape(_("Total"))
    candidates = _n("candidates", sum(r.by_audience.values()))
    rows.append(f"<tr><th>{total_label}</th>{totals}{candidates}</tr>")
    head = [
        escape(_("Audience")),
        *(_label(DECISION_LABELS[d], d) for d in DECISIONS),
        total_label,
    ]
    return _table(head, rows)


def _reason_table(r: MorningReport) -> str:
    order = list(REASON_LABELS)
    rows = [
        f"<tr><th>{_label(REASON_LABELS.get(code, code), code)}</th>{_n(f'reason:{code}', n)}</tr>"
        for code, n in sorted(
            r.reasons.items(),
            key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order),
        )
    ]
    return _table([escape(_("Reason code")), escape(_("Count"))], rows)


def _status_table(r: MorningReport) -> str:
    rows = [
        f"<tr><th>{_label(STATUS_LABELS[s], s.value)}</th>"
        f"{_n(f'status:{s.value}', r.stats[s])}</tr>"
        for s in DeliveryStatus
    ]
    total = escape(_("Total"))
    rows.append(f"<tr><th>{total}</th>{_n('deliveries', r.stats.total)}</tr>")
    return _table([escape(_("Status")), escape(_("Deliveries"))], rows)


def _replies_table(r: MorningReport) -> str:
    if not r.replies:
        return _muted(N_("No exchange with the SMTP server yet."))
    rows = [
        f"<tr><td>{_label(STATUS_LABELS[s], s.value)}</td><td><code>{escape(code)}</code></td>"
        f"<td>{escape(text[:200])}"
        + (
            '<br><span class="muted">'
            + _html(N_("and {n} other replies"), n=f"{variants - 1:,}")
            + "</span>"
            if variants > 1
            else ""
        )
        + f"</td>{_n(f'reply:{s.value}:{code}', n)}</tr>"
        for s, code, text, variants, n in r.replies
    ]
    head = (_("Status"), _("Reply code"), _("Last reply or error (an example)"), _("Deliveries"))
    return _table([escape(h) for h in head], rows)


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
        return _muted(N_("No message sent yet."))
    start, width, counts = rate_buckets(r.sent_times)
    rates = [n / width for n in counts]
    top = max(rates) or 1.0
    scale = 10 ** math.floor(math.log10(top))
    ceiling = math.ceil(top / scale) * scale
    w, h, left, bottom, top_pad = 960, 280, 64, 40, 32
    plot_w, plot_h = w - left - 16, h - bottom - top_pad
    bar_w = plot_w / len(rates)
    chart, unit = escape(_("Send rate over time")), escape(_("messages/s"))
    parts = [
        f'<svg role="img" aria-label="{chart}" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
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
        title = _html(
            N_("{time}: {n} messages ({rate} messages/s)"),
            time=_jst(moment),
            n=f"{counts[i]:,}",
            rate=f"{rate:,.1f}",
        )
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top_pad + plot_h - bar_h:.1f}" '
            f'width="{max(bar_w - 2, 1):.1f}" height="{bar_h:.1f}" fill="#2f6fb3">'
            f"<title>{title}</title></rect>"
        )
    end = start + timedelta(seconds=len(rates) * width)
    parts.append(
        f'<text x="{left}" y="{h - 12}">{_jst(start)}</text>'
        f'<text x="{left + plot_w}" y="{h - 12}" text-anchor="end">{_jst(end)}</text>'
        f'<text x="{left - 6}" y="{top_pad - 16}" text-anchor="end">'
        f"{unit}</text>"
        "</svg>"
    )
    caption = _html(
        N_("One bar = {width} seconds. At most {peak} messages/s; {sent} messages sent."),
        width=f"{width:,}",
        peak=f"{max(rates):,.1f}",
        sent=f"{len(r.sent_times):,}",
    )
    return "".join(parts) + f'<p class="muted">{caption}</p>'


def _warnings_section(r: MorningReport) -> str:
    if not r.warning_counts:
        return _muted(N_("No warnings."))
    counts = _table(
        [escape(_("Warning code")), escape(_("Count"))],
        (
            f"<tr><th>{_label(WARNING_LABELS.get(c, c), c)}</th>{_n(f'warning:{c}', n)}</tr>"
            for c, n in sorted(r.warning_counts.items())
        ),
    )
    listed = _table(
        [escape(_("Code")), escape(_("Account")), escape(_("Detail"))],
        (
            # the detail is a sentence for a person (§4): in the operator's language, like
            # warnings.csv; the ledger keeps it as the resolver wrote it
            f"<tr><td><code>{escape(c)}</code></td><td><code>{escape(a)}</code></td>"
            f"<td>{escape(localize(d, WARNING_DETAILS))}</td></tr>"
            for c, a, d in r.warnings
        ),
    )
    more = sum(r.warning_counts.values()) - len(r.warnings)
    note = ""
    if more > 0:
        listed_elsewhere = _html(N_("{n} more: see warnings.csv."), n=f"{more:,}")
        note = f'<p class="muted">{listed_elsewhere}</p>'
    return counts + listed + note


def _bounces_section(r: MorningReport) -> str:
    if not r.bounces:
        return _muted(N_("This run added no address to the suppression list."))
    rows = (
        f"<tr><td><code>{escape(e)}</code></td><td><code>{escape(c)}</code></td>"
        f"<td>{escape(t[:200])}</td></tr>"
        for e, c, t in r.bounces
    )
    added = _html(
        N_("Added to the suppression list: {n} addresses"),
        n=f'<b data-count="bounces">{len(r.bounces):,}</b>',
    )
    head = [escape(_("Address")), escape(_("Reply code")), escape(_("Reply"))]
    return f"<p>{added}</p>" + _table(head, rows)


def render_html(r: MorningReport, *, generated: datetime) -> str:
    """The whole page as one string (UTF-8 when written), in the language in force."""
    run = r.run
    finished = _label(N_("Finished"), "finished")
    state = (
        f'<span class="state ok">{finished}</span>'
        if r.finished
        else '<span class="state open">'
        + _html(N_("Open: {n} left"), n=f"{r.stats.open:,}")
        + ' <span class="code">open</span></span>'
    )
    cards = "".join(
        f'<div class="card{" alert" if alarming and value else ""}">'
        f'<span class="n" data-count="card:{key}">{value:,}</span>{escape(_(label))}</div>'
        for key, label, value, alarming in (
            ("candidates", N_("Candidates"), run.candidates, False),
            ("deliveries", N_("Deliveries (addresses)"), r.stats.total, False),
            *(
                (s.value, label, r.stats[s], s is not DeliveryStatus.SENT)
                for s, label in (
                    (DeliveryStatus.SENT, N_("Sent")),
                    (DeliveryStatus.DEFERRED, N_("Deferred")),
                    (DeliveryStatus.FAILED, N_("Failed")),
                    (DeliveryStatus.BOUNCED, N_("Bounced")),
                )
            ),
        )
    )
    # What the morning reader checks first (did it go out, what did the relay say) comes first
    sections: Mapping[str, str] = {
        N_("Delivery status"): _status_table(r),
        N_("SMTP replies"): _replies_table(r),
        N_("Send rate over time"): _rate_chart(r),
        N_("Counts by audience and decision"): _audience_table(r),
        N_("Counts by reason code"): _reason_table(r),
        N_("Warnings"): _warnings_section(r),
        N_("Bounces (added to the suppression list)"): _bounces_section(r),
    }
    body = "".join(f"<h2>{escape(_(title))}</h2>{html}" for title, html in sections.items())
    title = _html(N_("Delivery report {run_id}"), run_id=escape(run.run_id))
    about = _html(
        N_("Campaign {campaign} · run key {key} · as of {day} · {state}"),
        campaign=f"<code>{escape(run.campaign_id)}</code>",
        key=f"<code>{escape(run.run_key)}</code>",
        day=escape(fmt_date(run.as_of)),
        state=state,
    )
    timeline = _html(
        N_(
            "Frozen {frozen} · finished {finished} · {passes} sending passes · resent after a crash"
            " {resent} · possible duplicates {duplicates} · generated {generated}"
        ),
        frozen=_jst(run.resolved_at),
        finished=_jst(run.finished_at),
        passes=f"{run.pass_no:,}",
        resent=f"{r.stats.unconfirmed:,}",
        duplicates=f"{r.stats.possible_duplicate:,}",
        generated=_jst(generated),
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{current_language()}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
        f"<h1>{title}</h1>"
        f"<p>{about}</p>"
        f'<p class="muted">{timeline}</p>'
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
