"""VERP (SPEC §10): every delivery its own envelope sender, so a bounce names its delivery.

`[message] return_path = "bounce+{token}@mailer.example.jp"`: the token is the delivery's
ledger id and a keyed HMAC of (id, Message-ID), with the key from the environment variable named
by `message.verp_key_env`. Whoever does not hold the key cannot make a token that verifies, so a
forged bounce cannot suppress an address the job never mailed, and the id alone (counting up)
gives nothing away. 64 bits of MAC keep the address short: `bounce+3f-mfrgg2lbnrsxe2a@…`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from jobs.config.settings import VERP_PLACEHOLDER

__all__ = ["ReturnPath", "parse_token", "token_verifies", "verp_token"]

_MAC_BYTES = 8
_MAC_CHARS = 13  # base32 of 8 bytes without padding
_TOKEN = re.compile(rf"([0-9a-z]+)-([a-z2-7]{{{_MAC_CHARS}}})")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    if n < 0:
        raise ValueError("delivery ids are not negative")
    out = ""
    while True:
        n, digit = divmod(n, 36)
        out = _DIGITS[digit] + out
        if n == 0:
            return out


def _mac(key: bytes, delivery_id: int, message_id: str) -> str:
    digest = hmac.new(key, f"{delivery_id}\x00{message_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:_MAC_BYTES]).decode("ascii").rstrip("=").lower()


def verp_token(key: bytes, delivery_id: int, message_id: str) -> str:
    """The token of one delivery: `<id in base 36>-<MAC>`, lower case (MTAs may fold case)."""
    return f"{_base36(delivery_id)}-{_mac(key, delivery_id, message_id)}"


def parse_token(token: str) -> tuple[int, str] | None:
    """(delivery id, MAC) of a well-formed token, or None; the MAC is not verified here."""
    match = _TOKEN.fullmatch(token.lower())
    if match is None:
        return None
    return int(match.group(1), 36), match.group(2)


def token_verifies(key: bytes, token: str, delivery_id: int, message_id: str) -> bool:
    """True when `token` is the one this key gives the delivery (constant-time comparison)."""
    return hmac.compare_digest(token.lower(), verp_token(key, delivery_id, message_id))


@dataclass(frozen=True, slots=True)
class ReturnPath:
    """The envelope sender of each delivery: fixed, or with the delivery's VERP token."""

    template: str  # an address, with or without {token}
    key: bytes | None  # set when the template holds {token}

    def for_delivery(self, delivery_id: int, message_id: str) -> str:
        if self.key is None:
            return self.template
        return self.template.replace(
            VERP_PLACEHOLDER, verp_token(self.key, delivery_id, message_id)
        )

    def token_in(self, address: str) -> str | None:
        """The token in `address` when it has this return path's shape, else None."""
        if self.key is None:
            return None
        before, _, after = self.template.partition(VERP_PLACEHOLDER)
        pattern = re.escape(before) + r"([0-9A-Za-z-]+)" + re.escape(after)
        match = re.fullmatch(pattern, address.strip(), flags=re.IGNORECASE)
        return match.group(1).lower() if match else None
