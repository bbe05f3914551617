"""Who may be entitled to a campaign: one `Candidate` per person of SPEC §4 "Candidates".

Candidates of one account come back in the dedupe tie-break order of §4 (source order as
listed, then person id), so that the resolver's "first seen is send" rule is the spec's choice.
"""

from __future__ import annotations

from resolver.model import (
    Audience,
    Candidate,
    ContactRole,
    CustomerAccount,
    MyPageRole,
    PartnerAccount,
    Source,
    User,
)
from resolver.normalize import normalize_email, strip_controls

__all__ = [
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

_LEGACY_ADMIN_ID = "admin"


def is_legacy_admin(user: User) -> bool:
    """The built-in user ID `admin`, compared case-insensitively (§4)."""
    return user.user_id.lower() == _LEGACY_ADMIN_ID


def _user_source(user: User) -> Source | None:
    # §4: `admin` is a candidate whatever its flag; a user is one candidate at most.
    if is_legacy_admin(user):
        return Source.LEGACY_ADMIN
    if user.is_system_admin:
        return Source.SYSTEM_ADMIN
    return None


def _order(candidate: Candidate) -> tuple[int, str]:
    return SOURCE_ORDER[candidate.source], candidate.person_id


def customer_candidates(account: CustomerAccount) -> tuple[Candidate, ...]:
    """My Page contacts, `admin` and system administrators of one customer, in §4 order."""
    customer = account.customer
    found: list[Candidate] = []
    for contact in account.contacts:
        name, sanitized = strip_controls(contact.name)
        found.append(
            Candidate(
                audience=Audience.CUSTOMER,
                source=_MYPAGE_SOURCE[contact.role],
                account_id=customer.corp_id,
                account_name=customer.company_name,
                person_id="",
                name=name,
                email=contact.email,
                normalized=normalize_email(contact.email),
                customer=customer,
                name_sanitized=sanitized,
            )
        )
    for user in account.users:
        source = _user_source(user)
        if source is None:
            continue
        name, sanitized = strip_controls(user.name)
        found.append(
            Candidate(
                audience=Audience.CUSTOMER,
                source=source,
                account_id=customer.corp_id,
                account_name=customer.company_name,
                person_id=user.user_id,
                name=name,
                email=user.email,
                normalized=normalize_email(user.email),
                customer=customer,
                user=user,
                name_sanitized=sanitized,
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
        name, sanitized = strip_controls(contact.name)
        found.append(
            Candidate(
                audience=audience,
                source=source,
                account_id=partner.partner_id,
                account_name=partner.name,
                person_id=contact.contact_id,
                name=name,
                email=contact.email,
                normalized=normalize_email(contact.email),
                partner=partner,
                contact=contact,
                name_sanitized=sanitized,
            )
        )
    found.sort(key=_order)
    return tuple(found)
