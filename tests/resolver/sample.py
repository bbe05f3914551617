"""Read the shared sample data set (SPEC §3 CSVs) into resolver values with the csv module only.

Deliberately independent of the importer in `jobs/`: the sample-data test checks the policy,
so a loader bug there cannot hide a policy bug here (or the other way round).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from resolver.model import (
    AccountType,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    Customer,
    CustomerAccount,
    MyPageContact,
    MyPageRole,
    Partner,
    PartnerAccount,
    PartnerContact,
    PartnerKind,
    PartnerStatus,
    Plan,
    Product,
    ProductStatus,
    User,
    UserStatus,
)
from resolver.normalize import dedupe_key


@dataclass(frozen=True)
class SampleData:
    customers: tuple[CustomerAccount, ...]
    partners: tuple[PartnerAccount, ...]
    suppressed: frozenset[str]


def _rows(folder: Path, name: str) -> Iterator[dict[str, str]]:
    path = folder / name
    if not path.exists():
        return
    with path.open(encoding="utf-8-sig", newline="") as f:
        yield from csv.DictReader(f)


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def load(folder: Path) -> SampleData:
    """Every account of the data set with its contacts, users and active products."""
    contacts: defaultdict[str, list[MyPageContact]] = defaultdict(list)
    for r in _rows(folder, "mypage_contacts.csv"):
        contacts[r["corp_id"]].append(MyPageContact(MyPageRole(r["role"]), r["name"], r["email"]))
    users: defaultdict[str, list[User]] = defaultdict(list)
    for r in _rows(folder, "users.csv"):
        users[r["corp_id"]].append(
            User(
                user_id=r["user_id"],
                name=r["name"],
                email=r["email"],
                is_system_admin=r["is_system_admin"] == "1",
                account_type=AccountType(r["account_type"]),
                status=UserStatus(r["status"]),
            )
        )
    products: defaultdict[str, set[Product]] = defaultdict(set)
    for r in _rows(folder, "contracts.csv"):
        if ProductStatus(r["status"]) is ProductStatus.ACTIVE:
            products[r["corp_id"]].add(Product(r["product"]))
    customers = tuple(
        CustomerAccount(
            customer=Customer(
                corp_id=r["corp_id"],
                company_name=r["company_name"],
                channel=Channel(r["channel"]),
                reseller_partner_id=r["reseller_partner_id"] or None,
                plan=Plan(r["plan"]),
                contract_status=ContractStatus(r["contract_status"]),
                applied_on=_date(r["applied_on"]),
                is_oem=r["is_oem"] == "1",
                postal_code=r["mypage_postal_code"],
                address=r["mypage_address"],
            ),
            contacts=tuple(contacts[r["corp_id"]]),
            users=tuple(users[r["corp_id"]]),
            active_products=frozenset(products[r["corp_id"]]),
        )
        for r in _rows(folder, "customers.csv")
    )

    partner_contacts: defaultdict[str, list[PartnerContact]] = defaultdict(list)
    for r in _rows(folder, "partner_contacts.csv"):
        partner_contacts[r["partner_id"]].append(
            PartnerContact(
                contact_id=r["contact_id"],
                name=r["name"],
                email=r["email"],
                role=ContactRole(r["role"]),
                certified_until=_date(r["certified_until"]),
                status=ContactStatus(r["status"]),
            )
        )
    partners = tuple(
        PartnerAccount(
            partner=Partner(
                partner_id=r["partner_id"],
                name=r["name"],
                kind=PartnerKind(r["kind"]),
                status=PartnerStatus(r["status"]),
                postal_code=r["postal_code"],
                address=r["address"],
            ),
            contacts=tuple(partner_contacts[r["partner_id"]]),
        )
        for r in _rows(folder, "partners.csv")
    )

    suppressed = frozenset(
        key for r in _rows(folder, "suppressions.csv") if (key := dedupe_key(r["email"]))
    )
    return SampleData(customers, partners, suppressed)


def expected(folder: Path, name: str) -> dict[str, tuple[str, str, str]]:
    """key -> (decision, reasons, group) of an expected_*.csv file."""
    return {r["key"]: (r["decision"], r["reasons"], r["group"]) for r in _rows(folder, name)}
