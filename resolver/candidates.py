"""Who may be entitled to a campaign: one `Candidate` per person of SPEC §4 "Candidates".

Candidates of one account come back in the dedupe tie-break order of §4 (source order as
listed, then person id), so that the resolver's "first seen is send" rule is the spec's choice.
"""

from __future__ import annotations

from resolver.model import (
    Audience,
    Candidate,
    ContactRole,
    Customer,
    CustomerAccount,
    MyPageRole,
    Partner,
    PartnerAccount,
    PartnerContact,
    Source,
    User,
)
from resolver.normalize import normalize_email, strip_controls

__all__ = [
    "LEGACY_ADMIN_ID",
    "SOURCE_ORDER",
    "customer_candidates",
    "is_legacy_admin",
    "non_candidates",
    "partner_candidates",
]

SOURCE_ORDER: dict[Source, int] = {source: i for i, source in enumerate(Source)}
"""Position of each source in §4's list: a dedupe tie-breaker."""

_MYPAGE_SOURCE = {
    MyPageRole.CONTRACT_MANAGER: Source.MYPAGE_CONTRACT_MANAGER,
    MyPageRole.BILLING: Source.MYPAGE_BILLING,
}

_CONTACT_SOURCE = {
    ContactRole.CONTACT: (Source.PARTNER_CONTACT, Audience.PARTNER),
    ContactRole.CERTIFIED_IMPLEMENTER: (
        Source.CERTIFIED_IMPLEMENTER,
        Audience.IMPLEMENTATION_PARTNER,
    ),
}

LEGACY_ADMIN_ID = "admin"
"""The built-in user ID with My Page access (§4), compared case-insensitively."""


def is_legacy_admin(user: User) -> bool:
    """The built-in user ID `admin`, compared case-insensitively (§4)."""
    return user.user_id.lower() == LEGACY_ADMIN_ID


def _user_source(user: User) -> Source | None:
    # §4: `admin` is a candidate whatever its flag; a user is one candidate at most.
    if is_legacy_admin(user):
        return Source.LEGACY_ADMIN
    if user.is_system_admin:
        return Source.SYSTEM_ADMIN
    return None


def _order(candidate: Candidate) -> tuple[int, str]:
    return SOURCE_ORDER[candidate.source], candidate.person_id


def _candidate(
    audience: Audience,
    source: Source,
    account_id: str,
    account_name: str,
    person_id: str,
    raw_name: str,
    email: str,
    *,
    customer: Customer | None = None,
    user: User | None = None,
    partner: Partner | None = None,
    contact: PartnerContact | None = None,
) -> Candidate:
    """One candidate, its name cleaned of control characters and its address normalized."""
    name, sanitized = strip_controls(raw_name)  # HEADER_SANITIZED when anything was removed
    return Candidate(
        audience=audience,
        source=source,
        account_id=account_id,
        account_name=account_name,
        person_id=person_id,
        name=name,
        email=email,
        normalized=normalize_email(email),
        customer=customer,
        user=user,
        partner=partner,
        contact=contact,
        name_sanitized=sanitized,
    )


def customer_candidates(account: CustomerAccount) -> tuple[Candidate, ...]:
    """My Page contacts, `admin` and system administrators of one customer, in §4 order."""
    customer = account.customer
    found = [
        _candidate(
            Audience.CUSTOMER,
            _MYPAGE_SOURCE[contact.role],
            customer.corp_id,
            customer.company_name,
            "",
            contact.name,
            contact.email,
            customer=customer,
        )
        for contact in account.contacts
    ]
    for user in account.users:
        source = _user_source(user)
        if source is not None:
            found.append(
                _candidate(
                    Audience.CUSTOMER,
                    source,
                    customer.corp_id,
                    customer.company_name,
                    user.user_id,
                    user.name,
                    user.email,
                    customer=customer,
                    user=user,
                )
            )
    found.sort(key=_order)
    return tuple(found)


def non_candidates(account: CustomerAccount) -> tuple[User, ...]:
    """Users without the System Administrator permission (and not `admin`): `explain` only."""
    return tuple(
        sorted(
            (user for user in account.users if _user_source(user) is None),
            key=lambda user: user.user_id,
        )
    )


def partner_candidates(account: PartnerAccount) -> tuple[Candidate, ...]:
    """Every contact of one partner; the role decides source and audience (§4)."""
    partner = account.partner
    found: list[Candidate] = []
    for contact in account.contacts:
        source, audience = _CONTACT_SOURCE[contact.role]
        found.append(
            _candidate(
                audience,
                source,
                partner.partner_id,
                partner.name,
                contact.contact_id,
                contact.name,
                contact.email,
                partner=partner,
                contact=contact,
            )
        )
    found.sort(key=_order)
    return tuple(found)
