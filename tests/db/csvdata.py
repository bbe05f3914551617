"""CSV data sets for the database tests: copies of the sample with one change, synthetic sets,
and the accounts a data set should load as — built with the csv module only, independently of
`jobs.importer` and `jobs.loader`, so that a bug there cannot hide in the expectation.
"""

from __future__ import annotations

import csv
import random
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from jobs.source_models import source_tables
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
    User,
    UserStatus,
)

__all__ = [
    "Table",
    "copy_sample",
    "db_state",
    "expected_customers",
    "expected_partners",
    "read_table",
    "write_synthetic",
    "write_table",
]

CSV_NAMES = (
    "partners",
    "customers",
    "mypage_contacts",
    "users",
    "partner_contacts",
    "contracts",
    "suppressions",
)


@dataclass
class Table:
    """One CSV file as header + rows of cells; data row i is on physical line i + 2."""

    header: list[str]
    rows: list[list[str]]

    def col(self, name: str) -> int:
        return self.header.index(name)

    def line_of(self, index: int) -> int:
        return index + 2


def copy_sample(sample: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in CSV_NAMES:
        shutil.copyfile(sample / f"{name}.csv", target / f"{name}.csv")
    return target


def read_table(folder: Path, name: str) -> Table:
    with (folder / f"{name}.csv").open(encoding="utf-8-sig", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    return Table(header, rows)


def write_table(
    folder: Path, name: str, table: Table, encoding: str = "utf-8", bom: bool = False
) -> Path:
    path = folder / f"{name}.csv"
    with path.open("w", encoding=encoding, newline="") as fh:
        if bom:
            fh.write("\ufeff")
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(table.header)
        writer.writerows(table.rows)
    return path


def _records(folder: Path, name: str) -> list[dict[str, str]]:
    path = folder / f"{name}.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


_ROLE_ORDER = {MyPageRole.CONTRACT_MANAGER: 0, MyPageRole.BILLING: 1}


def expected_customers(folder: Path) -> list[CustomerAccount]:
    """The accounts of a data set in the loader's order: corp_id, then role / user_id."""
    contacts: defaultdict[str, list[MyPageContact]] = defaultdict(list)
    for r in _records(folder, "mypage_contacts"):
        contacts[r["corp_id"]].append(MyPageContact(MyPageRole(r["role"]), r["name"], r["email"]))
    users: defaultdict[str, list[User]] = defaultdict(list)
    for r in _records(folder, "users"):
        users[r["corp_id"]].append(
            User(
                r["user_id"],
                r["name"],
                r["email"],
                r["is_system_admin"] == "1",
                AccountType(r["account_type"]),
                UserStatus(r["status"]),
            )
        )
    products: defaultdict[str, set[Product]] = defaultdict(set)
    for r in _records(folder, "contracts"):
        if r["status"] == "active":
            products[r["corp_id"]].add(Product(r["product"]))
    accounts = [
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
            contacts=tuple(sorted(contacts[r["corp_id"]], key=lambda c: _ROLE_ORDER[c.role])),
            users=tuple(sorted(users[r["corp_id"]], key=lambda u: u.user_id)),
            active_products=frozenset(products[r["corp_id"]]),
        )
        for r in _records(folder, "customers")
    ]
    return sorted(accounts, key=lambda a: a.customer.corp_id)


def expected_partners(folder: Path) -> list[PartnerAccount]:
    contacts: defaultdict[str, list[PartnerContact]] = defaultdict(list)
    for r in _records(folder, "partner_contacts"):
        contacts[r["partner_id"]].append(
            PartnerContact(
                r["contact_id"],
                r["name"],
                r["email"],
                ContactRole(r["role"]),
                _date(r["certified_until"]),
                ContactStatus(r["status"]),
            )
        )
    accounts = [
        PartnerAccount(
            Partner(
                r["partner_id"],
                r["name"],
                PartnerKind(r["kind"]),
                PartnerStatus(r["status"]),
                r["postal_code"],
                r["address"],
            ),
            tuple(sorted(contacts[r["partner_id"]], key=lambda c: c.contact_id)),
        )
        for r in _records(folder, "partners")
    ]
    return sorted(accounts, key=lambda a: a.partner.partner_id)


def db_state(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every source table, in key order: equal states mean an unchanged database."""
    state: dict[str, list[tuple[object, ...]]] = {}
    with engine.connect() as conn:
        for table in source_tables():
            rows = conn.execute(sa.select(table)).all()
            state[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    return state


def write_synthetic(folder: Path, customers: int, seed: int = 0) -> Path:
    """A valid data set of `customers` customers with the shape of production (bench, paging)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    partner_ids = [f"P{i:07d}" for i in range(1, max(2, customers // 100) + 1)]
    tables: dict[str, list[Sequence[object]]] = defaultdict(list)
    for pid in partner_ids:
        tables["partners"].append(
            (pid, f"株式会社パートナー{pid}", "reseller", "active", "100-0001", "東京都")
        )
        tables["partner_contacts"].append(
            (pid, f"K{pid}", "担当 太郎", f"{pid.lower()}@example.jp", "contact", "", "active")
        )
    for i in range(1, customers + 1):
        corp = f"C{i:09d}"
        reseller = rng.random() < 0.3
        tables["customers"].append(
            (
                corp,
                f"株式会社テスト{i}",
                "reseller" if reseller else "direct",
                rng.choice(partner_ids) if reseller else "",
                rng.choice(["free", "paid"]),
                rng.choice(["active", "active", "suspended", "terminated"]),
                "2021-04-01",
                int(rng.random() < 0.05),
                "100-0001",
                f"東京都千代田区{i}",
                f"株式会社テスト{i} 本社",
                "書類用",
            )
        )
        tables["mypage_contacts"].append(
            (corp, "contract_manager", "契約 花子", f"cm.{corp}@example.jp")
        )
        if rng.random() < 0.7:
            tables["mypage_contacts"].append(
                (corp, "billing", "請求 次郎", f"bill.{corp}@example.jp")
            )
        for u in range(rng.randint(0, 5)):
            uid = "admin" if u == 0 and rng.random() < 0.3 else f"user{u:02d}"
            tables["users"].append(
                (
                    corp,
                    uid,
                    "利用 者",
                    f"{uid}.{corp}@example.co.jp",
                    rng.choice([0, 1]),
                    "group" if rng.random() < 0.05 else "normal",
                    rng.choice(["active", "locked"]),
                )
            )
        for product in rng.sample(["sales", "accounting", "payroll"], rng.randint(0, 3)):
            tables["contracts"].append((corp, product, rng.choice(["active", "terminated"])))
    for n in range(customers // 50):
        tables["suppressions"].append((f"bounce{n}@example.jp", "hard_bounce", "2026-01-01"))
    for table in source_tables():
        with (folder / f"{table.name}.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([c.name for c in table.columns])
            writer.writerows(tables[table.name])
    return folder
