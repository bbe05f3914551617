"""Passwords never reach an operator's screen or a log (issue 6: masked in every message).

A database URL may carry a password (`postgresql://user:secret@host/db`). Every message that
shows a URL, or text that may contain one (a driver's error, a setting's bad value), goes through
`mask_secrets` first. One home, so a new message cannot forget a different rule.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "mask_secrets", "url_password"]

MASK = "***"

# `//user:password@`, with or without a scheme before it: the password is everything from the
# first ':' after the user to the last '@' of the same word, so a malformed URL (an '@' or '/'
# in the password, a scheme without its ':') is masked too.
_USERINFO = re.compile(r"(?P<head>//[^:/@\s'\"]*:)(?P<password>[^\s'\"]*)@")


def mask_secrets(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***`."""
    return _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", text)


def url_password(url: str) -> str | None:
    """The password of `url` as `mask_secrets` sees it (percent-encoding kept), or None."""
    found = _USERINFO.search(url)
    return None if found is None else found.group("password")
