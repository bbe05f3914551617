"""One message from the bounce mailbox → a `Notice`: what failed, how badly, for which message.

Pure functions over bytes, tested without a database:
- RFC 3464 (`multipart/report; report-type=delivery-status`, what Postfix, Sendmail and most
  relays send) is read with the `email` package: each per-recipient block gives the recipient,
  `Action`, `Status` (5.x.x hard, 4.x.x soft) and `Diagnostic-Code`.
- Anything else goes through `flufl.bounce`, Mailman's detectors for the formats found in the
  wild (Exim's `X-Failed-Recipients`, qmail's QSBMF, Microsoft, Yahoo…). They name recipients
  and tell temporary from permanent; the status and diagnostic are taken from the reply line in
  the text (`550 5.1.1 …`, qmail's `(#5.1.1)`) when there is one.
- The original Message-ID comes from the returned message or headers (a `message/rfc822` or
  `text/rfc822-headers` part, or the copy below the text in Exim and qmail bounces).
A message with no failure at all (an auto-reply, spam, a delivery report) is not a bounce.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from flufl.bounce import all_failures

from jobs.ledger.values import BounceKind
from resolver.normalize import dedupe_key

__all__ = ["Failure", "Notice", "parse_notice"]

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?<![\d.#])([45])\d\d(?:[ -]|$)")
# RFC 3464 §2.3.3 `Action` values that report a failure (the others: delivered, relayed,
# expanded). Its own vocabulary, case-insensitive, unrelated to the ledger's status words.
_FAILURE_ACTION = re.compile(r"\s*(?:failed|delayed)\s*", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"^message-id:[ \t]*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_DIAGNOSTIC_MAX = 500  # characters kept of a diagnostic (the audit's last_error)
# Headers in which the receiving MTA records the envelope recipient (the VERP address).
_ENVELOPE_HEADERS = ("x-original-to", "delivered-to", "envelope-to", "to")


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient the notification reports as failed or delayed."""

    recipient: str  # the dedupe key (§4) of the address the report gives
    kind: BounceKind
    status: str  # an enhanced status code, e.g. 5.1.1
    diagnostic: str


@dataclass(frozen=True, slots=True)
class Notice:
    """What a message in the bounce mailbox says; `failures` is empty when it is not a bounce."""

    fingerprint: str  # its own Message-ID, or a hash of its bytes
    subject: str
    sender: str
    failures: tuple[Failure, ...]
    original_message_ids: tuple[str, ...]  # from the returned message or headers
    envelope_to: tuple[str, ...]  # addresses it was delivered to (VERP tokens live here)
    detector: str  # rfc3464 | flufl.bounce | ""

    @property
    def is_bounce(self) -> bool:
        return bool(self.failures)

    def worst_for(self, address: str) -> Failure:
        """The failure to record for a delivery to `address`: its own, hard before soft."""
        key = dedupe_key(address)
        own = [f for f in self.failures if f.recipient == key] or list(self.failures)
        return min(own, key=lambda f: (f.kind is not BounceKind.HARD, own.index(f)))


def _clean(text: str) -> str:
    return " ".join(text.split())[:_DIAGNOSTIC_MAX]


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset label
        return payload.decode("utf-8", errors="replace")


def _kind(status: str) -> BounceKind:
    return BounceKind.HARD if status.startswith("5") else BounceKind.SOFT


def _address(field: str) -> str:
    """`rfc822; User@Example.jp` → `user@example.jp` (its dedupe key)."""
    _, _, value = field.partition(";")
    return dedupe_key((value or field).strip().strip("<>")) or ""


def _dsn_failures(report: Message) -> Iterator[Failure]:
    """The per-recipient blocks of a `message/delivery-status` part (RFC 3464 §2.3)."""
    payload = report.get_payload()
    if isinstance(payload, list):
        blocks = [b for b in payload if isinstance(b, Message)]
    else:
        # a parser that left the part as text: split the blocks ourselves
        text = str(payload)
        blocks = [HeaderParser().parsestr(b.strip() + "\n") for b in re.split(r"\n\s*\n", text)]
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        status_field = str(block.get("Status", "")).strip()
        match = _ENHANCED.search(status_field)
        if not _FAILURE_ACTION.fullmatch(str(block.get("Action", ""))) or match is None:
            continue  # delivered, relayed, expanded: not a failure
        status = match.group(0)
        recipient = _address(
            str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        )
        diagnostic = str(block.get("Diagnostic-Code", ""))
        _, sep, rest = diagnostic.partition(";")
        yield Failure(
            recipient=recipient,
            kind=_kind(status),
            status=status,
            diagnostic=_clean(rest if sep else diagnostic) or status,
        )


def _returned_message_ids(msg: Message) -> Iterator[str]:
    for part in msg.walk():  # the bounce's own headers are not in any part's payload
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            for original in inner if isinstance(inner, list) else ():
                if isinstance(original, Message) and original.get("Message-ID"):
                    yield str(original["Message-ID"]).strip()
        elif ctype == "text/rfc822-headers":
            headers = HeaderParser().parsestr(_text(part) or str(part.get_payload()))
            if headers.get("Message-ID"):
                yield str(headers["Message-ID"]).strip()
        elif ctype == "text/plain":
            # Exim and qmail append the original below their text, headers first
            yield from _MESSAGE_ID.findall(_text(part))


def _reply_line(text: str, address: str) -> str:
    """The line that carries the remote server's reply, nearest after the failed address."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if address in line.lower()), 0)
    for line in lines[start:] + lines[:start]:
        if _ENHANCED.search(line) or _REPLY.search(line.strip()):
            return _clean(line)
    return ""


def _heuristic_failures(msg: Message) -> Iterator[Failure]:
    temporary, permanent = all_failures(msg)
    text = "\n".join(
        _text(part)
        for part in msg.walk()
        if part.get_content_type() == "text/plain" and not part.is_multipart()
    )
    # Only the bounce's own text: the returned copy below it may quote any status code.
    for marker in ("------ This is a copy of the message", "--- Below this line is a copy"):
        text = text.split(marker, 1)[0]
    for found, default in ((permanent, "5.0.0"), (temporary, "4.0.0")):
        for raw in sorted(found):
            address = dedupe_key(raw.decode("ascii", errors="replace")) or ""
            line = _reply_line(text, address)
            enhanced = _ENHANCED.search(line)
            status = enhanced.group(0) if enhanced else default
            reply = _REPLY.search(line)
            if enhanced is None and reply is not None:
                status = f"{reply.group(1)}.0.0"
            if status[0] != default[0]:
                status = default  # the detector's verdict on permanence stands
            yield Failure(address, _kind(status), status, line or "non-standard bounce")


def _decoded(value: str) -> str:
    """An RFC 2047 header value as text (a Japanese subject of a bounce or auto-reply)."""
    try:
        return _clean(str(make_header(decode_header(value))))
    except (LookupError, UnicodeDecodeError, ValueError):
        return _clean(value)


def _fingerprint(msg: Message, data: bytes) -> str:
    own = str(msg.get("Message-ID", "")).strip()
    if own:
        return own[:255]
    normalized = data.replace(b"\r\n", b"\n")
    return "sha256:" + hashlib.sha256(normalized).hexdigest()


def _is_dsn(msg: Message) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "")).lower() == "delivery-status"
    )


def parse_notice(data: bytes) -> Notice:
    """Read one message of the bounce mailbox."""
    msg = email.message_from_bytes(data)
    if _is_dsn(msg):
        failures = tuple(
            failure
            for part in msg.walk()
            if part.get_content_type() == "message/delivery-status"
            for failure in _dsn_failures(part)
        )
        detector = "rfc3464"
    else:
        failures = tuple(_heuristic_failures(msg))
        detector = "flufl.bounce" if failures else ""
    envelope = getaddresses([str(v) for name in _ENVELOPE_HEADERS for v in msg.get_all(name, [])])
    return Notice(
        fingerprint=_fingerprint(msg, data),
        subject=_decoded(str(msg.get("Subject", ""))),
        sender=_decoded(str(msg.get("From", ""))),
        failures=failures,
        original_message_ids=tuple(dict.fromkeys(_returned_message_ids(msg))),
        envelope_to=tuple(dict.fromkeys(address.lower() for _, address in envelope if address)),
        detector=detector,
    )
