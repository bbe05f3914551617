"""Address normalization and name sanitizing (SPEC §4 "Normalization", §6 headers).

Both are pure text functions so that the resolver, the suppression list and the MIME builder
agree on one spelling of an address and on what counts as a control character.

email-validator decides what is a valid address. It costs 60-100 µs per address, most of it
Unicode and IDNA checks of the domain that a plain ASCII address cannot fail, and a resolution
normalizes every candidate's address. So an address that is plainly valid — ASCII, a dot-atom
local part, LDH labels under an all-letter top-level domain, within every length limit — is
normalized here directly, to exactly what email-validator would return for it; everything else
(and every invalid address, so every error message) still goes through email-validator.
tests/resolver/test_normalize_fast_path.py holds the two to the same results.
"""

from __future__ import annotations

import re
import unicodedata

import email_validator
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DNS_LABEL_LENGTH_LIMIT,
    EMAIL_MAX_LENGTH,
    LOCAL_PART_MAX_LENGTH,
)

from resolver.model import Normalized

__all__ = ["BIDI_CONTROLS", "address_and_key", "dedupe_key", "normalize_email", "strip_controls"]

# Characters that end a header line or a CSV row in some reader: C0/C1 controls (incl. CR, LF,
# TAB) and the Unicode line/paragraph separators U+2028/U+2029.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
"""Bidi embeddings, overrides and isolates (LRE…RLO, LRI…PDI): they reorder the text around them,
so "田中 <evil@example.jp>" can display as another person's name or address (Trojan Source)."""


def _is_control(ch: str) -> bool:
    return ch in BIDI_CONTROLS or unicodedata.category(ch) in _CONTROL_CATEGORIES


def strip_controls(text: str) -> tuple[str, bool]:
    """Remove control, line-separator and bidi override characters; True when any were removed."""
    # §6: no header ever carries CR/LF from data; HEADER_SANITIZED records the change (§4).
    if text.isprintable():
        # Fast path: printable text holds no Cc/Zl/Zp character, and bidi controls (Cf) are
        # not printable either.
        return text, False
    kept = "".join(ch for ch in text if not _is_control(ch))
    return kept, kept != text


# RFC 5322 3.2.3 atext, as email-validator's DOT_ATOM_TEXT; no character of it is a dot.
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
# RFC 952/1123 LDH label; a hyphen never starts or ends one (email-validator's HOSTNAME_LABEL).
_LABEL = f"[A-Za-z0-9](?:[A-Za-z0-9-]{{0,{DNS_LABEL_LENGTH_LIMIT - 2}}}[A-Za-z0-9])?"
# Letters only: email-validator wants the domain to end with a letter (globally_deliverable);
# a Punycode TLD (xn--...) is left to it.
_TLD = f"[A-Za-z]{{2,{DNS_LABEL_LENGTH_LIMIT}}}"
_LOCAL_PART = rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*"
_DOMAIN = rf"(?:{_LABEL}\.)+{_TLD}"
_PLAIN_ADDRESS = re.compile(rf"({_LOCAL_PART})@({_DOMAIN})")
"""The plain grammar as one pattern; neither part holds an @, so it splits at the only one."""
_PLAIN_LOCAL = re.compile(_LOCAL_PART)
_PLAIN_DOMAIN = re.compile(_DOMAIN)
# RFC 2142 role mailboxes: email-validator lower-cases their local part.
_CASE_INSENSITIVE = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)

# Domains already judged: as written → lower-cased when plainly valid, "" when not. A data set
# has far fewer domains than addresses (1,138 for 290,000 at the 100k demo set), and the
# domain's regex and special-use check were most of the fast path's cost (issue 10). Judged
# against `_SPECIAL_USE`, a copy of email-validator's list (documented as settable by its
# users): compared with the list on every call, and the memo starts again when it changed.
_DOMAINS: dict[str, str] = {}
_DOMAINS_LIMIT = 100_000  # then start again: a bound on memory, not a limit on correctness
_SPECIAL_USE: list[str] = []


def _plain_domain(domain: str) -> str:
    """The domain lower-cased when plainly valid; "" to ask email-validator."""
    # "--": an R-LDH label ("ab--c") is invalid and an xn-- label needs an IDNA decode.
    if _PLAIN_DOMAIN.fullmatch(domain) is None or "--" in domain:
        return ""
    # UTS-46 mapping lower-cases an ASCII domain before the special-use check.
    lowered = domain.lower()
    names = _SPECIAL_USE
    if lowered in names or lowered.endswith(tuple("." + name for name in names)):
        return ""
    return lowered


def _plain_address(text: str) -> str | None:
    """The normalized address when `text` is plainly valid; None: ask email-validator."""
    # A pure ASCII address is as long in UTF-8 octets as in characters, and the original, the
    # normalized and the IDNA ASCII forms are one length, all checked against 254 by it.
    if len(text) > EMAIL_MAX_LENGTH:
        return None
    # The first @: with another one the domain fails its pattern, like the whole one would.
    local, at, domain = text.partition("@")
    # email-validator checks the 64-octet local-part limit only in strict mode; within it,
    # the fast path is right in either mode.
    if not at or len(local) > LOCAL_PART_MAX_LENGTH or _PLAIN_LOCAL.fullmatch(local) is None:
        return None
    if email_validator.SPECIAL_USE_DOMAIN_NAMES != _SPECIAL_USE:
        _DOMAINS.clear()
        _SPECIAL_USE[:] = email_validator.SPECIAL_USE_DOMAIN_NAMES
    lowered = _DOMAINS.get(domain)
    if lowered is None:
        if len(_DOMAINS) >= _DOMAINS_LIMIT:
            _DOMAINS.clear()
        lowered = _DOMAINS[domain] = _plain_domain(domain)
    if not lowered:
        return None
    if local.lower() in _CASE_INSENSITIVE:
        return f"{local.lower()}@{lowered}"
    # Usually nothing changes: keep the source's string rather than build an equal one.
    return text if lowered == domain else f"{local}@{lowered}"


def _validated_address(text: str) -> str:
    """The normalized address by email-validator, without DNS; raises EmailNotValidError."""
    valid = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    # allow_smtputf8=False guarantees an ASCII local part; an IDN domain arrives as punycode.
    return f"{valid.local_part}@{valid.ascii_domain.lower()}"


def address_and_key(raw: str) -> tuple[str | None, str | None, bool, str | None, bool]:
    """(address, key, missing, error, changed) of one source address; see `normalize_email`.

    The plain-values form, for the resolution's hot loop (one tuple instead of an object).
    """
    trimmed = raw.strip()  # str.strip also trims U+3000 (full-width space)
    if not trimmed:
        return None, None, True, None, False
    if trimmed.isascii():
        folded, changed = trimmed, False  # NFKC maps every ASCII character to itself
    else:
        # §4: full-width ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ becomes ASCII (warning EMAIL_NORMALIZED).
        folded = unicodedata.normalize("NFKC", trimmed).strip()
        changed = folded != trimmed
    address = _plain_address(folded)
    if address is None:
        try:
            address = _validated_address(folded)
        except EmailNotValidError as exc:
            return None, None, False, str(exc), changed
    key = address.lower()
    # Share one string when the address is already lower-case: millions are kept for dedupe.
    return address, (address if key == address else key), False, None, changed


def normalize_email(raw: str) -> Normalized:
    """Trim, NFKC, validate without DNS; the dedupe key is the address lower-cased (§4)."""
    address, key, missing, error, changed = address_and_key(raw)
    return Normalized(
        original=raw, address=address, key=key, missing=missing, error=error, changed=changed
    )


def dedupe_key(raw: str) -> str | None:
    """The dedupe key of a suppression-list entry, comparable with candidates' keys (§4)."""
    normalized = normalize_email(raw)
    if normalized.key is not None:
        return normalized.key
    if normalized.missing:
        return None
    # An entry that is not a valid address can never equal a valid candidate's key; keep a
    # stable spelling anyway so it is stored and shown consistently.
    return unicodedata.normalize("NFKC", raw.strip()).strip().lower()
