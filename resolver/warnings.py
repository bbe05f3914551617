"""Warnings of SPEC §4: facts an operator should look at, never a decision.

Each function states one warning's condition and writes its `detail` sentence (warnings.csv is
read by support staff, so the sentence names the person or account in plain words).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import date

from resolver.candidates import is_legacy_admin
from resolver.model import (
    Candidate,
    Channel,
    ContractStatus,
    CustomerAccount,
    Decided,
    Decision,
    Reason,
    Source,
    Warning,
    WarningCode,
)

__all__ = [
    "ADMIN_CUTOFF",
    "admin_after_cutoff",
    "candidate_warnings",
    "email_normalized",
    "header_sanitized",
    "unreachable_customer",
]

ADMIN_CUTOFF = date(2019, 9, 24)
"""§2: the built-in `admin` was issued only to customers who applied before this day (and OEM)."""

_SOURCE_WORDS = {
    Source.MYPAGE_CONTRACT_MANAGER: "My Page contract manager",
    Source.MYPAGE_BILLING: "My Page billing contact",
    Source.LEGACY_ADMIN: "user",
    Source.SYSTEM_ADMIN: "user",
    Source.PARTNER_CONTACT: "partner contact",
    Source.CERTIFIED_IMPLEMENTER: "certified implementer",
}


def _who(c: Candidate) -> str:
    person = f" {c.person_id}" if c.person_id else ""
    return f"{_SOURCE_WORDS[c.source]}{person} of {c.account_id}"


def email_normalized(c: Candidate) -> Warning | None:
    """EMAIL_NORMALIZED: NFKC changed the address (e.g. full-width characters)."""
    normalized = c.normalized
    if not normalized.changed:
        return None
    if normalized.address is not None:
        detail = (
            f"Address {normalized.original.strip()} of {_who(c)} was normalized to"
            f" {normalized.address}."
        )
    else:
        folded = unicodedata.normalize("NFKC", normalized.original.strip()).strip()
        detail = (
            f"Address {normalized.original.strip()} of {_who(c)} was normalized to {folded},"
            " which is still not a valid address."
        )
    return Warning(WarningCode.EMAIL_NORMALIZED, c.account_id, c.person_id, c.email, detail)


def header_sanitized(c: Candidate) -> Warning | None:
    """HEADER_SANITIZED: the person's name held control or bidi override characters, removed."""
    if not c.name_sanitized:
        return None
    detail = (
        f"The name of {_who(c)} held control characters (such as line breaks or text-direction"
        f" overrides), which were removed; it now reads {c.name}."
    )
    return Warning(WarningCode.HEADER_SANITIZED, c.account_id, c.person_id, c.email, detail)


def candidate_warnings(c: Candidate) -> tuple[Warning, ...]:
    """The per-person warnings of one candidate inside the campaign."""
    found = (email_normalized(c), header_sanitized(c))
    return tuple(w for w in found if w is not None)


def admin_after_cutoff(account: CustomerAccount) -> Warning | None:
    """ADMIN_AFTER_CUTOFF: a non-OEM customer that applied on or after 2019-09-24 has `admin`."""
    customer = account.customer
    if customer.is_oem or customer.applied_on is None or customer.applied_on < ADMIN_CUTOFF:
        return None
    admins = sorted((u for u in account.users if is_legacy_admin(u)), key=lambda u: u.user_id)
    if not admins:
        return None
    admin = admins[0]
    detail = (
        f"Customer {customer.corp_id} applied on {customer.applied_on.isoformat()} and is not"
        f" an OEM contract, yet has the built-in user ID {admin.user_id}, which was issued only"
        f" before {ADMIN_CUTOFF.isoformat()}; please check the account."
    )
    return Warning(
        WarningCode.ADMIN_AFTER_CUTOFF, customer.corp_id, admin.user_id, admin.email, detail
    )


def unreachable_customer(account: CustomerAccount, rows: Iterable[Decided]) -> Warning | None:
    """UNREACHABLE_CUSTOMER: a direct, not terminated customer none of whose rows is delivered.

    The caller has already checked that the customer is in the campaign's audience and filters.
    """
    customer = account.customer
    if customer.channel is not Channel.DIRECT:
        return None
    if customer.contract_status is ContractStatus.TERMINATED:
        return None
    decided = tuple(rows)
    # §4: a person skipped only because an earlier run already reached them is not a gap
    if any(
        row.decision is not Decision.SKIP or row.reasons == (Reason.ALREADY_SENT,)
        for row in decided
    ):
        return None
    if len(decided) == 1:
        detail = (
            f"Direct customer {customer.corp_id} will receive nothing: its only recipient"
            " was skipped."
        )
    elif decided:
        detail = (
            f"Direct customer {customer.corp_id} will receive nothing: all {len(decided)}"
            " recipients (My Page contacts and administrators) were skipped."
        )
    else:
        detail = (
            f"Direct customer {customer.corp_id} will receive nothing: it has no My Page"
            " contact and no administrator user ID."
        )
    return Warning(WarningCode.UNREACHABLE_CUSTOMER, customer.corp_id, "", "", detail)
