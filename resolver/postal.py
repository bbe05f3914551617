"""The paper-mail list (SPEC §10 `export-postal`): which accounts get a letter, and where to.

The help center's rule is that SmileWorks writes to the postal address in My Page 会社基本設定,
never to 設定 > 共通設定 > 会社情報 (company info, printed on the customer's own documents): these
functions never see company info at all. One row per account the campaign covers, whatever its
people's e-mail addresses: a letter reaches a company even when nobody in it can get mail.
"""

from __future__ import annotations

from dataclasses import dataclass

from resolver.filters import customer_exclusion
from resolver.model import (
    AccountKind,
    Audience,
    CampaignPolicy,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    CustomerAccount,
    MyPageRole,
    PartnerAccount,
    PartnerStatus,
)
from resolver.normalize import strip_controls

__all__ = ["PostalRow", "customer_postal_row", "partner_postal_row"]

# §10: a partner is on the list when it has a contact of a role one of the audiences takes.
_ROLE_OF_AUDIENCE = {
    Audience.PARTNER: ContactRole.CONTACT,
    Audience.IMPLEMENTATION_PARTNER: ContactRole.CERTIFIED_IMPLEMENTER,
}


@dataclass(frozen=True, slots=True)
class PostalRow:
    """One letter: the §10 columns, in order."""

    account_kind: AccountKind
    account_id: str
    account_name: str
    postal_code: str
    address: str
    attention: str

    @property
    def missing_address(self) -> bool:
        """§10 MISSING_POSTAL_ADDRESS: the postal code or the address is empty after trimming."""
        return not self.postal_code or not self.address

    def cells(self) -> tuple[str, ...]:
        return (
            self.account_kind.value,
            self.account_id,
            self.account_name,
            self.postal_code,
            self.address,
            self.attention,
        )


def _name(text: str) -> str:
    """Names as in message headers (§6): control characters removed, trimmed."""
    return strip_controls(text)[0].strip()


def customer_postal_row(account: CustomerAccount, policy: CampaignPolicy) -> PostalRow | None:
    """A direct customer, contract not terminated, inside the campaign's filters; else None."""
    customer = account.customer
    if Audience.CUSTOMER not in policy.audiences:
        return None
    if customer.channel is not Channel.DIRECT:  # §2: a reseller's customer is never contacted
        return None
    if customer.contract_status is ContractStatus.TERMINATED:  # suspended still receives
        return None
    if customer_exclusion(account, policy) is not None:  # plans and products apply
        return None
    manager = next((m for m in account.contacts if m.role is MyPageRole.CONTRACT_MANAGER), None)
    return PostalRow(
        account_kind=AccountKind.CUSTOMER,
        account_id=customer.corp_id,
        account_name=_name(customer.company_name),  # My Page's name, never company_info_name
        postal_code=customer.postal_code.strip(),  # My Page 会社基本設定
        address=customer.address.strip(),
        attention=_name(manager.name) if manager is not None else "",
    )


def partner_postal_row(account: PartnerAccount, policy: CampaignPolicy) -> PostalRow | None:
    """An active partner with a contact (any status) of a role the audiences take; else None."""
    partner = account.partner
    if partner.status is not PartnerStatus.ACTIVE:
        return None
    roles = {role for audience, role in _ROLE_OF_AUDIENCE.items() if audience in policy.audiences}
    if not any(contact.role in roles for contact in account.contacts):
        return None
    # the active `contact` with the smallest contact_id (contacts come sorted by it)
    attention = next(
        (
            c
            for c in sorted(account.contacts, key=lambda c: c.contact_id)
            if c.role is ContactRole.CONTACT and c.status is ContactStatus.ACTIVE
        ),
        None,
    )
    return PostalRow(
        account_kind=AccountKind.PARTNER,
        account_id=partner.partner_id,
        account_name=_name(partner.name),
        postal_code=partner.postal_code.strip(),
        address=partner.address.strip(),
        attention=_name(attention.name) if attention is not None else "",
    )
