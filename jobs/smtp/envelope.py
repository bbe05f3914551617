"""The values that cross the sending boundary: what to send, and what became of it.

The sender stage hands the pool an `Envelope` (bytes flattened once, never re-encoded per
attempt) and gets back plain values, so that the ledger records outcomes without knowing SMTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from resolver.model import DeliveryStatus

__all__ = [
    "SESSION_PHASES",
    "Envelope",
    "FinalResult",
    "FinalStatus",
    "Outcome",
    "Phase",
    "RecipientResult",
    "SendResult",
    "combined",
    "crlf",
    "dot_stuffed",
    "wire_body",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Outcome(StrEnum):
    """What one attempt (or the whole retry sequence) achieved for a recipient."""

    SENT = DeliveryStatus.SENT.value
    TRANSIENT = "transient"  # 4xx, connection trouble, timeout: worth another attempt
    PERMANENT = "permanent"  # 5xx: the server will say the same thing again


class Phase(StrEnum):
    """Where in the SMTP dialogue an attempt stopped; decides what a failure means."""

    CONNECT = "connect"  # TCP, implicit TLS, greeting, EHLO
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the DATA command, before the server's 354
    BODY = "body"  # the body is on the wire, the final reply is awaited


# Failures here concern the relay session, not one message: every delivery would see them.
SESSION_PHASES = frozenset({Phase.CONNECT, Phase.STARTTLS, Phase.AUTH})


class FinalStatus(StrEnum):
    """The delivery status words of SPEC §5 that retries can end in (spelled by DeliveryStatus)."""

    SENT = DeliveryStatus.SENT.value
    DEFERRED = DeliveryStatus.DEFERRED.value
    FAILED = DeliveryStatus.FAILED.value


_STATUS_OF = {
    Outcome.SENT: FinalStatus.SENT,
    Outcome.TRANSIENT: FinalStatus.DEFERRED,
    Outcome.PERMANENT: FinalStatus.FAILED,
}


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message ready for the wire: SMTP envelope plus the exact bytes to send.

    `sender` and `recipients` are bare addresses (MAIL FROM / RCPT TO), never header values
    with display names. `key` is the delivery key of the ledger, opaque here; `message_id`
    travels along so that a result can name the message that was (possibly) delivered twice.
    """

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str
    key: str
    # `data` already breaks every line with CRLF and ends with one, as jobs.messages builds it
    # (tests/messages/test_golden_bytes.py holds it to that): the wire form then skips `crlf`,
    # whose three scans of the message were the largest SMTP-side cost per message left
    # (bench/send_cpu.py "wire form").
    crlf_form: bool = False

    def __post_init__(self) -> None:
        # Addresses become SMTP command arguments: a CR/LF would inject commands.
        if not self.recipients:
            raise ValueError("an envelope needs at least one recipient")
        for address in (self.sender, *self.recipients):
            if _CONTROL.search(address):
                raise ValueError(f"control character in envelope address {address!r}")
            if "<" in address or ">" in address:
                raise ValueError(f"envelope addresses are bare addresses, got {address!r}")
        if self.crlf_form and not self.data.endswith(b"\r\n"):
            raise ValueError("crlf_form data must end with CRLF")

    def only(self, recipients: tuple[str, ...]) -> Envelope:
        """The same message (same bytes, same Message-ID) for a subset of the recipients."""
        return replace(self, recipients=recipients)


def crlf(data: bytes) -> bytes:
    """The message with CRLF line endings and a final CRLF, as it travels (RFC 1870 SIZE).

    Each CRLF, lone LF and lone CR is one line break. Built messages already use CRLF
    throughout, so three counts (C loops, a few µs for a 12 kB message) usually prove there is
    nothing to rewrite; a regular expression took about 85 µs per message on every call.
    """
    breaks = data.count(b"\n")
    if data.count(b"\r") != breaks or data.count(b"\r\n") != breaks:
        # CRLF pairs cannot overlap, so replacing them first leaves only lone CRs and LFs.
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def wire_body(data: bytes) -> bytes:
    """The DATA payload: CRLF line endings, dot-stuffed, terminated by `.` (RFC 5321 §4.5.2)."""
    return dot_stuffed(crlf(data))


def dot_stuffed(body: bytes) -> bytes:
    """`wire_body` of a body that is already `crlf(...)`'s result (which SIZE has measured)."""
    if not _dot_starts_a_line(body):
        return body + b".\r\n"  # the usual case: headers and base64 never start with a dot
    # A line starts at the first byte or after an LF (in CRLF text an LF only ends a CRLF), so
    # this is exactly "a dot that begins a line gets a second one", without a regex pass.
    lead = b"." if body.startswith(b".") else b""
    return b"".join((lead, body.replace(b"\n.", b"\n.."), b".\r\n"))


_DOTS_CHECKED_ONE_BY_ONE = 32


def _dot_starts_a_line(body: bytes) -> bool:
    """Whether any line of `body` starts with a dot.

    Built messages hold a few dots (domains in headers), none at a line start. Finding each dot
    is a memchr; looking for the two bytes LF-dot is a slower scan of every byte, worth it only
    when dots are many (bench/send_cpu.py "wire form").
    """
    find = body.find
    at = find(b".")
    for _ in range(_DOTS_CHECKED_ONE_BY_ONE):
        if at == -1:
            return False
        if at == 0 or body[at - 1] == 0x0A:
            return True
        at = find(b".", at + 1)
    return b"\n." in body


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """One recipient's outcome in one attempt (or, in `FinalResult`, after the last one)."""

    address: str
    outcome: Outcome
    code: int | None
    text: str
    hard_bounce: bool = False  # §7: a 5.1.x reply: the caller suppresses the address


@dataclass(frozen=True, slots=True)
class SendResult:
    """The result of one attempt, as `Transport.send` returns it.

    `outcome` is TRANSIENT when any recipient is worth retrying, else PERMANENT when any was
    refused for good, else SENT. `after_data` means the connection failed after the message body
    was on the wire: the server may have accepted it, so a retry can deliver a duplicate.
    """

    outcome: Outcome
    code: int | None
    text: str
    recipients: tuple[RecipientResult, ...]
    after_data: bool = False
    phase: Phase | None = None  # where the attempt failed; None when it reached the end

    @classmethod
    def of(
        cls,
        recipients: tuple[RecipientResult, ...],
        code: int | None,
        text: str,
        *,
        after_data: bool = False,
        phase: Phase | None = None,
    ) -> SendResult:
        """Build a result whose overall outcome follows from its recipients."""
        return cls(combined(recipients), code, text, recipients, after_data, phase)


def combined(recipients: tuple[RecipientResult, ...]) -> Outcome:
    """TRANSIENT beats PERMANENT beats SENT: anything still retryable keeps the delivery open."""
    outcomes = {r.outcome for r in recipients}
    if Outcome.TRANSIENT in outcomes:
        return Outcome.TRANSIENT
    if Outcome.PERMANENT in outcomes:
        return Outcome.PERMANENT
    return Outcome.SENT


@dataclass(frozen=True, slots=True)
class FinalResult:
    """What the ledger records for one delivery after `send_with_retry`.

    `possible_duplicate`: an attempt failed after the body was sent and another attempt followed,
    so the recipient may hold two copies (same Message-ID; SPEC §7 counts them in the summary).
    `unknown_outcome`: the last attempt itself failed after the body was sent; the delivery is
    deferred, and whichever run resends it sends a possible duplicate.
    """

    key: str
    message_id: str
    outcome: Outcome
    attempts: int
    code: int | None
    text: str
    recipients: tuple[RecipientResult, ...]
    possible_duplicate: bool = False
    unknown_outcome: bool = False
    phase: Phase | None = None  # of the last attempt: in SESSION_PHASES, the relay is the problem

    @property
    def status(self) -> FinalStatus:
        """`sent`, `deferred` or `failed` (SPEC §5 status column)."""
        return _STATUS_OF[self.outcome]

    @property
    def hard_bounces(self) -> tuple[str, ...]:
        """Addresses to add to the suppression list as `hard_bounce` (SPEC §7)."""
        return tuple(r.address for r in self.recipients if r.hard_bounce)
