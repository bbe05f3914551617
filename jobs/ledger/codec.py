"""Conversions between resolver values and ledger columns, in one place.

The ledger stores a delivery's accounts as JSON text (not a child table) because they are only
ever read back whole, to render that delivery's message; reason codes are stored joined as the
audit CSV spells them (SPEC §5, `resolver.model.join_reasons`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from resolver.model import AccountKind, AccountRef, Source

__all__ = [
    "accounts_from_json",
    "accounts_to_json",
    "utc_now",
]


def utc_now() -> datetime:
    """The default clock of the ledger's write functions (callers may pass their own `now`)."""
    return datetime.now(UTC)


# One encoder for every delivery: `json.dumps` with options builds a new one per call, which the
# first `run` pays once per delivery of the freeze (issue 10).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def accounts_to_json(accounts: Iterable[AccountRef]) -> str:
    """The `recipient.accounts` of SPEC §6 as compact JSON (Japanese text kept readable).

    The kinds and roles are `StrEnum` members, which JSON writes as their values: reading
    `.value` per member would cost a Python call each.
    """
    return _COMPACT.encode(
        [
            {
                "kind": a.kind,
                "id": a.id,
                "name": a.name,
                "roles": list(a.roles),
                "postal_code": a.postal_code,
                "address": a.address,
            }
            for a in accounts
        ]
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
