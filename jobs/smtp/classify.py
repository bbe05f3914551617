"""The one place that decides what an SMTP failure means (STYLE: classify SMTP errors once).

Three answers are possible. TRANSIENT failures (connection refused or reset, timeouts,
disconnects, any 4xx reply) are retried. PERMANENT failures (5xx about one message or one
recipient) fail the delivery at once. SETUP failures say that the relay configuration is wrong
(certificate, TLS, credentials, a refused session or sender): every delivery would fail the same
way, so the run stops with one line instead of marking thousands of deliveries `failed`.

Hard bounces (SPEC §7 "a 5.1.x user-unknown reply"): a 5xx reply whose RFC 3463 enhanced status
code is `5.1.x`, given to a recipient (at RCPT, or at DATA when the message had one recipient),
except 5.1.7/5.1.8, which are about the sender. A bare `550 User unknown` without an enhanced
code is PERMANENT but not a hard bounce: 550 also covers policy and spam refusals, and a
suppression stops every future announcement to the person (it survives re-imports), so a
false positive costs far more than a miss, which stays visible in the audit as `failed`.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass

import aiosmtplib

from jobs.i18n import N_, tr
from jobs.smtp.envelope import SESSION_PHASES, Outcome, Phase

__all__ = ["Verdict", "classify", "enhanced_status", "one_line"]

_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
_SENDER_STATUS = frozenset({7, 8})  # 5.1.7 bad sender mailbox, 5.1.8 bad sender system
_ADDRESSED_PHASES = frozenset({Phase.RCPT, Phase.DATA, Phase.BODY})
# SSL errors that mean "the peer went away", not "TLS is misconfigured".
_SSL_DISCONNECTS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a failure means. `setup_error`, when set, is the one-line message to abort with."""

    outcome: Outcome
    code: int | None
    text: str
    phase: Phase
    hard_bounce: bool = False
    after_data: bool = False
    setup_error: str | None = None


def one_line(text: str) -> str:
    """Multi-line replies joined, so that audit cells and error lines stay one line."""
    return " / ".join(part.strip() for part in text.splitlines() if part.strip())


def enhanced_status(code: int, text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 status at the start of a reply, when its class agrees with the reply code."""
    match = _ENHANCED.match(text.lstrip())
    if match is None:
        return None
    status = (int(match[1]), int(match[2]), int(match[3]))
    return status if status[0] == code // 100 else None


def _ssl_error(error: BaseException) -> ssl.SSLError | None:
    """The SSL error behind `error`, if any (aiosmtplib wraps it in SMTPConnectError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _describe(error: BaseException) -> str:
    detail = str(error) or type(error).__name__
    if isinstance(error, TimeoutError) and not str(error):
        detail = "timed out"
    return one_line(detail)


def _reply_verdict(error: aiosmtplib.SMTPResponseException, phase: Phase, server: str) -> Verdict:
    code, text = error.code, one_line(error.message)
    reply = f"{code} {text}"
    if not 500 <= code <= 599:
        # 4xx, or a malformed/unexpected reply (aiosmtplib reports those as code -1): retry.
        return Verdict(Outcome.TRANSIENT, code, text, phase)
    status = enhanced_status(code, text)
    if phase in SESSION_PHASES:
        what = {
            Phase.CONNECT: N_("smtp: {server} refused the session: {reply}"),
            Phase.STARTTLS: N_("smtp: {server} refused STARTTLS: {reply}"),
            Phase.AUTH: N_(
                "smtp: {server} refused authentication (check smtp.username and"
                " smtp.password_env): {reply}"
            ),
        }[phase]
        return Verdict(
            Outcome.PERMANENT, code, text, phase, setup_error=tr(what, server=server, reply=reply)
        )
    if phase is Phase.MAIL:
        too_big = code == 552 or status == (5, 3, 4)
        if not too_big:
            # The sender is the same for every message: refusing it refuses the whole run.
            sender = getattr(error, "sender", "")
            return Verdict(
                Outcome.PERMANENT,
                code,
                text,
                phase,
                setup_error=tr(
                    "smtp: {server} refused the sender {sender}: {reply}",
                    server=server,
                    sender=sender,
                    reply=reply,
                ),
            )
    hard_bounce = (
        phase in _ADDRESSED_PHASES
        and status is not None
        and status[1] == 1
        and status[2] not in _SENDER_STATUS
    )
    return Verdict(Outcome.PERMANENT, code, text, phase, hard_bounce=hard_bounce)


def classify(error: BaseException, phase: Phase, server: str) -> Verdict:
    """Classify one failure of the SMTP dialogue at `phase` with `server` ("host:port").

    `hard_bounce` is only a candidate at DATA/BODY: the pool keeps it only when the message had a
    single accepted recipient, the one the reply can be about.
    """
    tls_error = _ssl_error(error)
    if isinstance(tls_error, ssl.SSLCertVerificationError):
        reason = tls_error.verify_message or tls_error.reason or str(tls_error)
        template = N_("smtp: certificate verify failed for {server} ({reason})")
        message = template.format(server=server, reason=reason)
        shown = tr(template, server=server, reason=reason)
        return Verdict(Outcome.PERMANENT, None, message, phase, setup_error=shown)
    if tls_error is not None and not isinstance(tls_error, _SSL_DISCONNECTS):
        reason = tls_error.reason or str(tls_error)
        template = N_(
            "smtp: TLS handshake with {server} failed ({reason}); check smtp.security and smtp.port"
        )
        message = template.format(server=server, reason=reason)
        shown = tr(template, server=server, reason=reason)
        return Verdict(Outcome.PERMANENT, None, message, phase, setup_error=shown)

    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _reply_verdict(error, phase, server)

    text = f"{phase.value}: {_describe(error)}"
    if isinstance(error, (OSError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError)):
        # Refused, reset, disconnected, timed out (TimeoutError is an OSError): all transient.
        # After the body went out, nobody knows whether the server kept the message.
        return Verdict(Outcome.TRANSIENT, None, text, phase, after_data=phase is Phase.BODY)
    if isinstance(error, aiosmtplib.SMTPException) and phase is Phase.AUTH:
        # e.g. the server offers no AUTH mechanism we share: a configuration problem.
        template = N_("smtp: authentication with {server} impossible: {reason}")
        message = template.format(server=server, reason=_describe(error))
        shown = tr(template, server=server, reason=_describe(error))
        return Verdict(Outcome.PERMANENT, None, message, phase, setup_error=shown)
    if isinstance(error, ValueError) and phase is Phase.RCPT:
        # The client refused to put this address in a command: only this recipient is affected.
        return Verdict(Outcome.PERMANENT, None, text, phase)
    # Anything else from the client library is unexpected: retrying later is the safe default,
    # since a deferred delivery loses nothing.
    return Verdict(Outcome.TRANSIENT, None, text, phase, after_data=phase is Phase.BODY)
