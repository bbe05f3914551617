"""CSV data sets for the database tests: copies of the sample with one change, synthetic sets,
and the accounts a data set should load as — built with the csv module only, independently of
`jobs.source.importer` and `jobs.source.loader`, so that a bug there cannot hide in the expectation.
"""

from __future__ import annotations

import csv
import random
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import sqlalchemy as sa

from jobs.source.models import source_tables
from resolver.model import (
    CustomerAccount,
    MyPageRole,
    PartnerAccount,
)
from tests.resolver.sample import load

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


def changed_sample(sample: Path, target: Path) -> Path:
    """A copy of the sample whose import changes an early table (a customer renamed) and ends on
    a new row in the last one written (suppressions): a refusal of that last row must undo both."""
    folder = copy_sample(sample, target)
    write_table(
        folder,
        "suppressions",
        Table(["email", "reason", "created_on"], [["a@example.jp", "manual", ""]]),
    )
    customers = read_table(folder, "customers")
    customers.rows[0][customers.col("company_name")] = "株式会社新社名"
    write_table(folder, "customers", customers)
    return folder


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


_ROLE_ORDER = {MyPageRole.CONTRACT_MANAGER: 0, MyPageRole.BILLING: 1}


def expected_customers(folder: Path) -> list[CustomerAccount]:
    """The accounts of a data set in the loader's order: corp_id, then role / user_id."""
    return sorted(
        (
            replace(
                account,
                contacts=tuple(sorted(account.contacts, key=lambda c: _ROLE_ORDER[c.role])),
                users=tuple(sorted(account.users, key=lambda u: u.user_id)),
            )
            for account in load(folder).customers
        ),
        key=lambda a: a.customer.corp_id,
    )


def expected_partners(folder: Path) -> list[PartnerAccount]:
    """The partners of a data set in the loader's order: partner_id, then contact_id."""
    return sorted(
        (
            replace(account, contacts=tuple(sorted(account.contacts, key=lambda c: c.contact_id)))
            for account in load(folder).partners
        ),
        key=lambda a: a.partner.partner_id,
    )


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
