"""Address normalization and name sanitizing (SPEC §4 "Normalization", §6 headers).

Both are pure text functions so that the resolver, the suppression list and the MIME builder
agree on one spelling of an address and on what counts as a control character.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from resolver.model import Normalized

__all__ = ["dedupe_key", "normalize_email", "strip_controls"]

# Characters that end a header line or a CSV row in some reader: C0/C1 controls (incl. CR, LF,
# TAB) and the Unicode line/paragraph separators U+2028/U+2029.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def strip_controls(text: str) -> tuple[str, bool]:
    """Remove control and line-separator characters; True when any were removed."""
    # §6: no header ever carries CR/LF from data; HEADER_SANITIZED records the change (§4).
    if text.isprintable():
        # Fast path: printable text holds no Cc/Zl/Zp character.
        return text, False
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in _CONTROL_CATEGORIES)
    return kept, kept != text


def normalize_email(raw: str) -> Normalized:
    """Trim, NFKC, validate without DNS; the dedupe key is the address lower-cased (§4)."""
    trimmed = raw.strip()  # str.strip also trims U+3000 (full-width space)
    if not trimmed:
        return Normalized(original=raw, address=None, key=None, missing=True)
    # §4: full-width ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ becomes ASCII (warning EMAIL_NORMALIZED).
    folded = unicodedata.normalize("NFKC", trimmed).strip()
    changed = folded != trimmed
    try:
        valid = validate_email(folded, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return Normalized(original=raw, address=None, key=None, error=str(exc), changed=changed)
    # allow_smtputf8=False guarantees an ASCII local part; an IDN domain arrives as punycode.
    address = f"{valid.local_part}@{valid.ascii_domain.lower()}"
    key = address.lower()
    # Share one string when the address is already lower-case: millions are kept for dedupe.
    return Normalized(
        original=raw, address=address, key=address if key == address else key, changed=changed
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
