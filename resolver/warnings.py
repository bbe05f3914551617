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
from resolver.text import N_

__all__ = [
    "ADMIN_CUTOFF",
    "DETAIL_TEMPLATES",
    "admin_after_cutoff",
    "candidate_warnings",
    "email_normalized",
    "header_sanitized",
    "unreachable_customer",
]

ADMIN_CUTOFF = date(2019, 9, 24)
"""§2: the built-in `admin` was issued only to customers who applied before this day (and OEM)."""

_SOURCE_WORDS = {
    Source.MYPAGE_CONTRACT_MANAGER: N_("My Page contract manager"),
    Source.MYPAGE_BILLING: N_("My Page billing contact"),
    Source.LEGACY_ADMIN: N_("user"),
    Source.SYSTEM_ADMIN: N_("user"),
    Source.PARTNER_CONTACT: N_("partner contact"),
    Source.CERTIFIED_IMPLEMENTER: N_("certified implementer"),
}

# The detail sentences as templates (English, `str.format`): the shell shows them in the
# operator's language by matching a sentence back to its template (jobs.i18n.localize).
_WHO = N_("{role}{person} of {account}")
_NORMALIZED = N_("Address {original} of {who} was normalized to {address}.")
_NORMALIZED_INVALID = N_(
    "Address {original} of {who} was normalized to {address}, which is still not a valid address."
)
_SANITIZED = N_(
    "The name of {who} held control characters (such as line breaks or text-direction"
    " overrides), which were removed; it now reads {name}."
)
_ADMIN = N_(
    "Customer {corp_id} applied on {applied_on} and is not an OEM contract, yet has the"
    " built-in user ID {user_id}, which was issued only before {cutoff}; please check the"
    " account."
)
_UNREACHABLE_ONE = N_(
    "Direct customer {corp_id} will receive nothing: its only recipient was skipped."
)
_UNREACHABLE_ALL = N_(
    "Direct customer {corp_id} will receive nothing: all {n} recipients (My Page contacts and"
    " administrators) were skipped."
)
_UNREACHABLE_NONE = N_(
    "Direct customer {corp_id} will receive nothing: it has no My Page contact and no"
    " administrator user ID."
)
DETAIL_TEMPLATES = (
    _WHO,
    _NORMALIZED,
    _NORMALIZED_INVALID,
    _SANITIZED,
    _ADMIN,
    _UNREACHABLE_ONE,
    _UNREACHABLE_ALL,
    _UNREACHABLE_NONE,
)
"""Every `detail` sentence of this module, as a template; `_WHO` fills their `{who}`."""


def _who(c: Candidate) -> str:
    person = f" {c.person_id}" if c.person_id else ""
    return _WHO.format(role=_SOURCE_WORDS[c.source], person=person, account=c.account_id)


def email_normalized(c: Candidate) -> Warning | None:
    """EMAIL_NORMALIZED: NFKC changed the address (e.g. full-width characters)."""
    normalized = c.normalized
    if not normalized.changed:
        return None
    if normalized.address is not None:
        detail = _NORMALIZED.format(
            original=normalized.original.strip(), who=_who(c), address=normalized.address
        )
    else:
        folded = unicodedata.normalize("NFKC", normalized.original.strip()).strip()
        detail = _NORMALIZED_INVALID.format(
            original=normalized.original.strip(), who=_who(c), address=folded
        )
    return Warning(WarningCode.EMAIL_NORMALIZED, c.account_id, c.person_id, c.email, detail)


def header_sanitized(c: Candidate) -> Warning | None:
    """HEADER_SANITIZED: the person's name held control or bidi override characters, removed."""
    if not c.name_sanitized:
        return None
    detail = _SANITIZED.format(who=_who(c), name=c.name)
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
    detail = _ADMIN.format(
        corp_id=customer.corp_id,
        applied_on=customer.applied_on.isoformat(),
        user_id=admin.user_id,
        cutoff=ADMIN_CUTOFF.isoformat(),
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
        detail = _UNREACHABLE_ONE.format(corp_id=customer.corp_id)
    elif decided:
        detail = _UNREACHABLE_ALL.format(corp_id=customer.corp_id, n=len(decided))
    else:
        detail = _UNREACHABLE_NONE.format(corp_id=customer.corp_id)
    return Warning(WarningCode.UNREACHABLE_CUSTOMER, customer.corp_id, "", "", detail)
