"""Small factories for resolver values: each test states only the facts it is about."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from resolver.model import (
    AccountType,
    CampaignPolicy,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    Customer,
    CustomerAccount,
    Decided,
    MyPageContact,
    MyPageRole,
    Partner,
    PartnerAccount,
    PartnerContact,
    PartnerKind,
    PartnerStatus,
    Plan,
    Product,
    Source,
    User,
    UserStatus,
)
from resolver.resolve import Resolution, resolve_all

AS_OF = date(2026, 12, 1)


def customer_account(
    corp_id: str = "C001",
    *,
    contacts: Iterable[MyPageContact] = (),
    users: Iterable[User] = (),
    channel: Channel = Channel.DIRECT,
    plan: Plan = Plan.PAID,
    status: ContractStatus = ContractStatus.ACTIVE,
    applied_on: date | None = date(2021, 4, 1),
    is_oem: bool = False,
    products: Iterable[Product] = (Product.SALES,),
) -> CustomerAccount:
    return CustomerAccount(
        customer=Customer(
            corp_id=corp_id,
            company_name=f"株式会社{corp_id}",
            channel=channel,
            reseller_partner_id="P900" if channel is Channel.RESELLER else None,
            plan=plan,
            contract_status=status,
            applied_on=applied_on,
            is_oem=is_oem,
            postal_code="100-0001",
            address=f"東京都千代田区 {corp_id}",
        ),
        contacts=tuple(contacts),
        users=tuple(users),
        active_products=frozenset(products),
    )


def mypage(
    email: str, role: MyPageRole = MyPageRole.CONTRACT_MANAGER, name: str = "山田 太郎"
) -> MyPageContact:
    return MyPageContact(role=role, name=name, email=email)


def user(
    user_id: str,
    email: str,
    *,
    admin: bool = True,
    account_type: AccountType = AccountType.NORMAL,
    status: UserStatus = UserStatus.ACTIVE,
    name: str = "佐藤 花子",
) -> User:
    return User(
        user_id=user_id,
        name=name,
        email=email,
        is_system_admin=admin,
        account_type=account_type,
        status=status,
    )


def partner_account(
    partner_id: str = "P001",
    *,
    contacts: Iterable[PartnerContact] = (),
    status: PartnerStatus = PartnerStatus.ACTIVE,
    kind: PartnerKind = PartnerKind.PARTNER,
) -> PartnerAccount:
    return PartnerAccount(
        partner=Partner(
            partner_id=partner_id,
            name=f"合同会社{partner_id}",
            kind=kind,
            status=status,
            postal_code="530-0001",
            address=f"大阪府大阪市北区 {partner_id}",
        ),
        contacts=tuple(contacts),
    )


def partner_contact(
    contact_id: str,
    email: str,
    *,
    role: ContactRole = ContactRole.CONTACT,
    certified_until: date | None = None,
    status: ContactStatus = ContactStatus.ACTIVE,
    name: str = "中村 恵",
) -> PartnerContact:
    return PartnerContact(
        contact_id=contact_id,
        name=name,
        email=email,
        role=role,
        certified_until=certified_until,
        status=status,
    )


def resolve(
    customers: Iterable[CustomerAccount] = (),
    partners: Iterable[PartnerAccount] = (),
    *,
    policy: CampaignPolicy | None = None,
    suppressed: frozenset[str] = frozenset(),
    as_of: date = AS_OF,
    already_sent: frozenset[str] = frozenset(),
) -> Resolution:
    return resolve_all(
        customers, partners, policy or CampaignPolicy(), as_of, suppressed, already_sent
    )


def row(resolution: Resolution, source: Source, account_id: str, person_id: str = "") -> Decided:
    """The audit row of one candidate (fails when there is none or more than one)."""
    (found,) = (
        r
        for r in resolution.rows
        if (r.candidate.source, r.candidate.account_id, r.candidate.person_id)
        == (source, account_id, person_id)
    )
    return found
