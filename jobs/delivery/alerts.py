"""The `nightly` alert (SPEC §9): one plain e-mail to `[alerts] to` when a person must look.

It goes through the same relay and the same retrying client as the campaigns (a relay that is
down for campaigns is down for the alert too, which `nightly` then says on stderr). It is plain
text on purpose: it is read on a phone at 7 a.m., and it must never be mistaken for a campaign.
"""

from __future__ import annotations

import asyncio
import email.policy
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from jobs.config.schedule import TOKYO
from jobs.config.settings import MessageSettings, SmtpSettings
from jobs.delivery.nightly import NightlyReport
from jobs.errors import MailerError
from jobs.i18n import _, fmt_date, tr
from jobs.messages.compose import envelope_sender
from jobs.smtp import Envelope, FinalStatus, SmtpPool, send_with_retry

__all__ = ["AlertFailed", "build_alert", "nightly_alert", "send_alert"]


class AlertFailed(MailerError):
    """The alert could not be sent; `nightly` reports it on stderr and keeps its exit code."""


def build_alert(
    to: Sequence[str],
    message: MessageSettings,
    *,
    now: datetime,
    subject: str,
    lines: Sequence[str],
) -> EmailMessage:
    """A short text/plain UTF-8 message from the configured sender to the alert addresses."""
    alert = EmailMessage(policy=email.policy.SMTP)
    alert["From"] = message.from_
    alert["To"] = ", ".join(to)
    alert["Subject"] = subject
    alert["Date"] = format_datetime(now.astimezone(TOKYO))
    alert["Message-ID"] = make_msgid("swmail-nightly", domain=message.message_id_domain)
    alert["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies back to the job
    alert.set_content("\n".join(lines) + "\n", charset="utf-8")
    return alert


def nightly_alert(
    report: NightlyReport, to: Sequence[str], message: MessageSettings
) -> EmailMessage:
    """The night's alert: what needs a person first, then every campaign's line for context."""
    flagged = [line for line in report.lines if line.alert]
    everything = [line.text() for line in report.lines]
    # in the operator's language like the lines it quotes; `[swmail nightly]` stays for filters
    local = report.now.astimezone(TOKYO)
    when = f"{fmt_date(local.date())} {local:%H:%M}"
    subject = tr(
        "[swmail nightly] {n} campaign(s) need attention ({when} JST, exit {code})",
        n=len(flagged),
        when=when,
        code=report.exit_code,
    )
    lines = [
        tr(
            "swmail nightly at {moment} finished with exit code {code}.",
            moment=report.now.isoformat(),
            code=report.exit_code,
        ),
        "",
        _("Needs attention:"),
        *(f"  {line.text()}" for line in flagged),
        "",
        _("Every campaign:"),
        *(f"  {text}" for text in everything),
        "",
        _("Details: swmail status; swmail report --run RUN_ID --out FILE.html"),
    ]
    return build_alert(to, message, now=report.now, subject=subject, lines=lines)


def send_alert(alert: EmailMessage, smtp: SmtpSettings) -> None:
    """Send the alert to every address in its To; AlertFailed when any is not accepted."""
    recipients = tuple(a.strip() for a in str(alert["To"]).split(",") if a.strip())
    envelope = Envelope(
        sender=envelope_sender(str(alert["From"])),
        recipients=recipients,
        data=alert.as_bytes(),
        message_id=str(alert["Message-ID"]),
        key="nightly-alert",
    )
    try:
        status, reply = asyncio.run(_send(envelope, smtp))
    except (MailerError, OSError, TimeoutError) as exc:
        raise AlertFailed(tr("the alert e-mail could not be sent: {exc}", exc=exc)) from exc
    if status is not FinalStatus.SENT:
        raise AlertFailed(
            tr(
                "the alert e-mail was not accepted ({value}): {reply}",
                value=status.value,
                reply=reply,
            )
        )


async def _send(envelope: Envelope, smtp: SmtpSettings) -> tuple[FinalStatus, str]:
    async with SmtpPool.from_settings(smtp.model_copy(update={"connections": 1})) as pool:
        result = await send_with_retry(
            pool,
            envelope,
            max_attempts=smtp.max_attempts,
            backoff_initial=smtp.backoff_initial_seconds,
            backoff_max=smtp.backoff_max_seconds,
        )
    return result.status, f"{result.code or ''} {result.text}".strip()
