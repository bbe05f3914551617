"""Conversions between resolver values and ledger columns, in one place.

The ledger stores a delivery's accounts as JSON text (not a child table) because they are only
ever read back whole, to render that delivery's message; reason codes are stored joined with `;`
exactly as the audit CSV spells them (SPEC §5).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from jobs.errors import InputError
from resolver.model import AccountKind, AccountRef, Reason, Source

__all__ = [
    "CODE_SEPARATOR",
    "accounts_from_json",
    "accounts_to_json",
    "join_codes",
    "make_run_id",
    "split_codes",
    "utc_now",
]

CODE_SEPARATOR = ";"  # §5: reasons are codes joined with ";"
RUN_ID_SEPARATOR = "/"  # §7: RUN_ID is <campaign_id>/<run_key>
MAX_ID_LENGTH = 128  # the campaign_id and run_key columns


def utc_now() -> datetime:
    """The default clock of the ledger's write functions (callers may pass their own `now`)."""
    return datetime.now(UTC)


def make_run_id(campaign_id: str, run_key: str) -> str:
    """§7: RUN_ID `<campaign_id>/<run_key>`; the campaign id cannot hold the separator."""
    if not campaign_id or RUN_ID_SEPARATOR in campaign_id:
        raise InputError(f"campaign id {campaign_id!r} must be non-empty and contain no '/'")
    if not run_key:
        raise InputError("the run key must not be empty")
    for what, value in (("campaign id", campaign_id), ("run key", run_key)):
        if len(value) > MAX_ID_LENGTH:
            raise InputError(f"{what} {value[:20]!r}… is longer than {MAX_ID_LENGTH} characters")
    return f"{campaign_id}{RUN_ID_SEPARATOR}{run_key}"


def join_codes(codes: Iterable[Reason]) -> str:
    return CODE_SEPARATOR.join(code.value for code in codes)


def split_codes(text: str) -> tuple[Reason, ...]:
    return tuple(Reason(code) for code in text.split(CODE_SEPARATOR) if code)


def accounts_to_json(accounts: Iterable[AccountRef]) -> str:
    """The `recipient.accounts` of SPEC §6 as compact JSON (Japanese text kept readable)."""
    return json.dumps(
        [
            {
                "kind": a.kind.value,
                "id": a.id,
                "name": a.name,
                "roles": [role.value for role in a.roles],
                "postal_code": a.postal_code,
                "address": a.address,
            }
            for a in accounts
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def accounts_from_json(text: str) -> tuple[AccountRef, ...]:
    items: list[dict[str, Any]] = json.loads(text)
    return tuple(
        AccountRef(
            kind=AccountKind(item["kind"]),
            id=item["id"],
            name=item["name"],
            roles=tuple(Source(role) for role in item["roles"]),
            postal_code=item["postal_code"],
            address=item["address"],
        )
        for item in items
    )
