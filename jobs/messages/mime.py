"""One rendered message → RFC 5322 bytes (SPEC §6), built directly on the sending hot path.

Why not `EmailMessage` per recipient: building and serializing one costs about 3 ms (header
parsing and refolding in pure Python), which caps a run near 350 messages/s. Here the fixed parts
(From, Reply-To, a campaign's common subject) are encoded once and cached, and each message is a
join of ASCII header lines plus bodies encoded by C code (`str.encode`, `binascii`).

Choices, each checked by tests/messages/test_mime.py parsing the bytes back with the stdlib:
- Header text outside plain ASCII is RFC 2047 B-encoded: the subject in words of at most 75
  characters, each holding whole characters (ISO-2022-JP words also start and end in ASCII mode);
  a display name in one word (see `_mailbox`). Lines are folded only past 998 octets, never at
  78 columns, like `email.policy.SMTP.clone(max_line_length=998)`.
- UTF-8 bodies are base64: Japanese text is nearly all multi-byte, so quoted-printable would
  triple its size (9 octets per kanji against 4), and 8bit would need the relay's 8BITMIME.
- ISO-2022-JP bodies are 7bit, as Japanese mail clients expect, unless a line exceeds 998 octets
  or holds NUL (then base64, still ISO-2022-JP). A message with a character outside JIS X 0208
  (𠮷, ①, 髙, ～ U+FF5E, emoji, half-width kana) is built in UTF-8 instead and says so
  (`fallback`), rather than silently substituting characters.
- Every header value that comes from data passes `sanitize_header` even though the resolver
  already cleaned names: Python 3.11's email package lacks the newest header-injection check,
  and no header may ever carry CR/LF from data (§6).
- No List-Unsubscribe: these are mandatory service notices, not marketing (§1).
"""

from __future__ import annotations

import binascii
import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import Address, AddressHeader, BaseHeader
from email.utils import format_datetime
from functools import lru_cache

from jobs.config.settings import Charset
from jobs.errors import ConfigError
from jobs.i18n import tr
from jobs.messages.render import Rendered
from resolver.normalize import strip_controls

__all__ = [
    "ORIGINAL_TO_HEADER",
    "TEST_SUBJECT_PREFIX",
    "BuiltMessage",
    "build_message",
    "message_id",
    "sanitize_header",
]

ORIGINAL_TO_HEADER = "X-SWMail-Original-To"  # §10: who a test copy stands in for
TEST_SUBJECT_PREFIX = "[TEST] "

_LINE_MAX = 998  # RFC 5322 §2.1.1, octets per line without CRLF
_WORD_MAX = 75  # RFC 2047 §2, characters per encoded word
_PLAIN_MAX = 256  # longer ASCII values are encoded so that they can be folded between words
# A display name is one encoded word up to this many raw octets (see `_mailbox`); with the longest
# address it still fits a 998-octet line.
_PHRASE_WORD_BYTES = 480
_BASE64_LINE = 76  # characters per base64 body line, as `base64.encodebytes` writes them

# RFC 5322 atext plus the space between atoms: a display name that needs no quoting.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
# A bare addr-spec as the resolver produces it: ASCII, no spaces or structural characters.
_ADDRESS = re.compile(r"[\x21-\x7e]+@[\x21-\x7e]+")
_ADDRESS_FORBIDDEN = frozenset('<>(),;:"[]\\')
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class _Codec:
    charset: Charset  # our spelling (settings, BuiltMessage)
    mime: str  # the MIME charset label
    word_prefix: str
    word_bytes: int  # raw octets per encoded word: its base64 fits in _WORD_MAX with the chrome

    @classmethod
    def of(cls, charset: Charset, mime: str) -> _Codec:
        prefix = f"=?{mime}?B?"
        room = _WORD_MAX - len(prefix) - len("?=")
        return cls(charset, mime, prefix, room // 4 * 3)


_UTF8 = _Codec.of("utf-8", "UTF-8")
_JIS = _Codec.of("iso-2022-jp", "ISO-2022-JP")


@dataclass(frozen=True, slots=True)
class BuiltMessage:
    """The bytes to send, and the charset they ended up in."""

    data: bytes
    charset: str
    fallback: bool  # ISO-2022-JP was asked for but the text needed UTF-8 (caller warns)


def sanitize_header(value: str) -> tuple[str, bool]:
    """Remove control and line-separator characters; True when any were removed."""
    # §6: no header ever carries CR/LF from data. One definition of "control" with the resolver.
    return strip_controls(value)


def message_id(campaign_id: str, run_key: str, delivery_key: str, domain: str) -> str:
    """Deterministic Message-ID (§6, §7): a resumed or dry run yields the same one."""
    if not _DOMAIN.fullmatch(domain):
        raise ConfigError(
            tr("message.message_id_domain {domain!r} is not an ASCII domain name", domain=domain)
        )
    # A hash, not the key itself: the delivery key is an e-mail address and must not leak.
    seed = f"{campaign_id}\x00{run_key}\x00{delivery_key}".encode()
    return f"<{hashlib.sha256(seed).hexdigest()[:32]}@{domain}>"


# --- header encoding --------------------------------------------------------------------------


def _b_word(codec: _Codec, raw: bytes) -> str:
    return codec.word_prefix + binascii.b2a_base64(raw, newline=False).decode("ascii") + "?="


@lru_cache(maxsize=4096)
def _encoded_words(text: str, codec: _Codec, limit: int) -> tuple[str, ...]:
    """B-words of at most `limit` raw octets; UnicodeEncodeError when the charset lacks a char."""
    if codec is _UTF8:
        data = text.encode("utf-8")
        words = []
        start, end_all = 0, len(data)
        while start < end_all:
            end = min(start + limit, end_all)
            while end < end_all and data[end] & 0xC0 == 0x80:  # never split a character
                end -= 1
            words.append(_b_word(codec, data[start:end]))
            start = end
        return tuple(words)
    whole = text.encode("iso-2022-jp")
    if len(whole) <= limit:
        return (_b_word(codec, whole),)
    # Each word must start and end in ASCII mode, so chunks are encoded one by one, greedily.
    words = []
    start, best = 0, b""
    for end in range(1, len(text) + 1):
        chunk = text[start:end].encode("iso-2022-jp")
        if len(chunk) > limit and end - 1 > start:
            words.append(_b_word(codec, best))
            start = end - 1
            chunk = text[start:end].encode("iso-2022-jp")
        best = chunk
    words.append(_b_word(codec, best))
    return tuple(words)


def _is_plain(text: str) -> bool:
    """ASCII that any reader shows as written: no encoding needed."""
    return (
        text.isascii()
        and text.isprintable()
        and len(text) <= _PLAIN_MAX
        and "=?" not in text
        and text == text.strip()
        and "  " not in text
    )


def _unstructured(text: str, codec: _Codec) -> tuple[str, ...]:
    if not text or _is_plain(text):
        return (text,)
    return _encoded_words(text, codec, codec.word_bytes)


def _mailbox(name: str, address: str, codec: _Codec) -> tuple[str, ...]:
    if not name:
        return (address,)
    if _is_plain(name):
        if _ATOMS.fullmatch(name):
            return (name, f"<{address}>")
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return (f'"{quoted}"', f"<{address}>")
    # One word, not RFC 2047's 75-character words: Python 3.11's address parser keeps
    # the space between adjacent encoded words of a display name, so a split "山田 太郎" would
    # read back as "山田 太 郎" in any stdlib-based tool. Mail clients accept long words, and
    # `email.policy.SMTP.clone(max_line_length=998)` writes names the same way.
    return (*_encoded_words(name, codec, _PHRASE_WORD_BYTES), f"<{address}>")


def _is_plain_address(address: str) -> bool:
    """An addr-spec that can stand in a header as is (the resolver only produces these)."""
    return bool(_ADDRESS.fullmatch(address)) and not _ADDRESS_FORBIDDEN.intersection(address)


@lru_cache(maxsize=64)
def _settings_mailbox(value: str, codec: _Codec, setting: str) -> tuple[str, ...]:
    """From / Reply-To from settings, parsed strictly and encoded once per run, not per message."""
    clean, _ = sanitize_header(value)
    # The stdlib's strict parser, not `parseaddr`: "Office Bcc: x@y <o@z>" must be refused, not
    # read as a group whose one member becomes the sender.
    parsed = policy.default.header_factory("reply-to", clean)  # an address-list header
    mailbox = _single_mailbox(parsed)
    if mailbox is None:
        raise ConfigError(
            tr(
                "{setting} {value!r} is not one address like 'Name <user@example.jp>'",
                setting=setting,
                value=value,
            )
        )
    return _mailbox(mailbox.display_name, mailbox.addr_spec, codec)


def _single_mailbox(parsed: BaseHeader) -> Address | None:
    if not isinstance(parsed, AddressHeader) or parsed.defects or len(parsed.groups) != 1:
        return None
    group = parsed.groups[0]
    if group.display_name is not None or len(group.addresses) != 1:
        return None
    mailbox = group.addresses[0]
    return mailbox if _is_plain_address(mailbox.addr_spec) else None


def _header(name: str, tokens: Sequence[str]) -> str:
    """`Name: tokens` joined by spaces, folded (CRLF + space) only where a line would pass 998."""
    parts = [name, ":"]
    length = len(name) + 1
    for token in tokens:
        if length + 1 + len(token) > _LINE_MAX and length > len(name) + 1:
            parts.append("\r\n ")
            length = 1
        else:
            parts.append(" ")
            length += 1
        parts.append(token)
        length += len(token)
    parts.append("\r\n")
    return "".join(parts)


# --- bodies -----------------------------------------------------------------------------------


def _crlf(text: str) -> str:
    # RFC 2046 §4.1.1: the canonical form of text has CRLF line breaks, also inside base64.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return text.replace("\n", "\r\n")


@lru_cache(maxsize=256)
def _line_cutter(lines: int) -> struct.Struct:
    return struct.Struct(f"{_BASE64_LINE}s" * lines)


def _base64_lines(data: bytes) -> bytes:
    """`base64.encodebytes` with CRLF line ends: lines of 76 characters (57 octets) each.

    encodebytes calls the encoder once per line from a Python loop (about 40 µs for a 9 kB body,
    twice per message). 57 is a multiple of 3, so encoding the whole body at once and cutting the
    text every 76 characters gives the same lines; a `struct` of n 76-byte fields does the
    cutting in C, where a slicing loop would still cost more than the encoding itself.
    """
    encoded = binascii.b2a_base64(data, newline=False)
    full, rest = divmod(len(encoded), _BASE64_LINE)
    lines = list(_line_cutter(full).unpack_from(encoded)) if full else []
    if rest:
        lines.append(encoded[full * _BASE64_LINE :])
    if not lines:
        return b""
    lines.append(b"")  # the last line's CRLF
    return b"\r\n".join(lines)


def _fits_7bit(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    return len(data) <= _LINE_MAX or max(map(len, data.split(b"\r\n"))) <= _LINE_MAX


def _part(text: str, subtype: str, codec: _Codec) -> tuple[bytes, bytes]:
    """(part headers, encoded body) of one text part."""
    data = _crlf(text).encode(codec.charset)
    if codec is _JIS and _fits_7bit(data):
        cte, body = "7bit", data
    else:
        cte, body = "base64", _base64_lines(data)
    headers = (
        f'Content-Type: text/{subtype}; charset="{codec.mime}"\r\n'
        f"Content-Transfer-Encoding: {cte}\r\n"
    )
    return headers.encode("ascii"), body


def _boundary(seed: str, parts: Sequence[bytes]) -> str:
    # Deterministic, so a dry run's .eml equals what `run` sends. "=_" cannot occur in base64
    # output; a 7bit ISO-2022-JP body is checked and the boundary lengthened if ever needed.
    boundary = "=_swmail_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    while any(f"--{boundary}".encode("ascii") in part for part in parts):
        boundary += "_"
    return boundary


# --- the message ------------------------------------------------------------------------------

# The header lines that are the same for every message of a run (or, for the subject, usually
# are) are built once: `lru_cache` keeps results, never exceptions, so a bad setting still fails
# every time, in the order the lines are written.


@lru_cache(maxsize=64)
def _sender_lines(from_: str, reply_to: str, codec: _Codec) -> str:
    lines = _header("From", _settings_mailbox(from_, codec, "message.from"))
    if reply_to:
        lines += _header("Reply-To", _settings_mailbox(reply_to, codec, "message.reply_to"))
    return lines


@lru_cache(maxsize=8)
def _date_line(date: datetime, offset: timedelta | None) -> str:
    """The header shows whole seconds: the messages sent within one second share the line.

    `offset` is part of the cache key only: aware datetimes compare by instant, so the same
    instant in another zone would otherwise find this zone's line.
    """
    return f"Date: {format_datetime(date)}\r\n"


@lru_cache(maxsize=1024)
def _subject_line(subject: str, codec: _Codec) -> str:
    return _header("Subject", _unstructured(subject, codec))


@lru_cache(maxsize=64)
def _trailer_lines(campaign_id: str, codec: _Codec) -> str:
    return "".join(
        (
            _header("MIME-Version", ("1.0",)),
            # RFC 3834: machine-generated, so vacation responders do not answer it.
            _header("Auto-Submitted", ("auto-generated",)),
            _header("X-SmileWorks-Campaign", _unstructured(campaign_id, codec)),
        )
    )


def _build(
    rendered: Rendered,
    codec: _Codec,
    *,
    to_name: str,
    to_addr: str,
    from_: str,
    reply_to: str,
    message_id: str,
    date: datetime,
    campaign_id: str,
    original_to: str | None,
) -> bytes:
    # A single token is never folded, so Date and Message-ID need no `_header`.
    headers = [
        _date_line(date.replace(microsecond=0), date.utcoffset()),
        _sender_lines(from_, reply_to, codec),
        _header("To", _mailbox(to_name, to_addr, codec)),
        _subject_line(rendered.subject, codec),
        f"Message-ID: {message_id}\r\n",
        _trailer_lines(campaign_id, codec),
    ]
    if original_to is not None:
        headers.append(_header(ORIGINAL_TO_HEADER, (original_to,)))
    text_headers, text_body = _part(rendered.text, "plain", codec)
    if rendered.html is None:
        head = "".join(headers).encode("ascii")
        return head + text_headers + b"\r\n" + text_body
    html_headers, html_body = _part(rendered.html, "html", codec)
    boundary = _boundary(message_id, (text_body, html_body))
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n')
    # RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter, so each part's own
    # final line break is kept by writing one more.
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return b"".join(
        (
            "".join(headers).encode("ascii"),
            b"\r\n",
            delimiter[2:],
            text_headers,
            b"\r\n",
            text_body,
            delimiter,
            html_headers,
            b"\r\n",
            html_body,
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        )
    )


def build_message(
    rendered: Rendered,
    *,
    to_name: str,
    to_addr: str,
    from_: str,
    reply_to: str,
    message_id: str,
    date: datetime,
    charset: Charset,
    campaign_id: str,
    original_to: str | None = None,
) -> BuiltMessage:
    """Encode one message; ISO-2022-JP falls back to UTF-8 when the text does not fit JIS.

    `original_to`: a test copy (§10 `test-send`, `redirect_all_to`): the subject is prefixed
    `[TEST]` and `X-SWMail-Original-To` names the person the real message is for, while `to_addr`
    is the test address.
    """
    if date.tzinfo is None:
        raise ValueError("the Date header needs an aware datetime (e.g. Asia/Tokyo)")
    if original_to is not None:
        original_to, _ = sanitize_header(original_to)
        if not _is_plain_address(original_to):
            raise ValueError(f"original recipient {original_to!r} is not a plain ASCII address")
        rendered = Rendered(
            subject=TEST_SUBJECT_PREFIX + rendered.subject, text=rendered.text, html=rendered.html
        )
    clean_subject, _ = sanitize_header(rendered.subject)
    if clean_subject != rendered.subject:
        rendered = Rendered(subject=clean_subject, text=rendered.text, html=rendered.html)
    clean_name = sanitize_header(to_name)[0].strip()  # " 斎藤 誠 " reads as "斎藤 誠"
    clean_addr, _ = sanitize_header(to_addr)
    if not _is_plain_address(clean_addr):
        raise ValueError(f"To address {to_addr!r} is not a plain ASCII address")
    clean_id, _ = sanitize_header(message_id)
    if not (clean_id.isascii() and clean_id.startswith("<") and " " not in clean_id):
        raise ValueError(f"Message-ID {message_id!r} is not like <id@domain>")
    clean_campaign, _ = sanitize_header(campaign_id)

    def build(codec: _Codec) -> bytes:
        return _build(
            rendered,
            codec,
            to_name=clean_name,
            to_addr=clean_addr,
            from_=from_,  # sanitized inside the cached parse
            reply_to=reply_to,
            message_id=clean_id,
            date=date,
            campaign_id=clean_campaign,
            original_to=original_to,
        )

    if charset == "iso-2022-jp":
        try:
            return BuiltMessage(build(_JIS), _JIS.charset, fallback=False)
        except UnicodeEncodeError:
            # A character outside JIS X 0208: this one message goes out in UTF-8.
            return BuiltMessage(build(_UTF8), _UTF8.charset, fallback=True)
    return BuiltMessage(build(_UTF8), _UTF8.charset, fallback=False)
