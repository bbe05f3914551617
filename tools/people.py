"""A minimal §3 data set for tests and benchmarks: one delivery per address, in the order given.

Each address becomes a direct, active, paid customer whose My Page contract manager it is, so
that the resolution makes exactly one `send` per address and the seq order follows the list.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

__all__ = ["write_people"]

_CUSTOMER_COLUMNS = (
    "corp_id", "company_name", "channel", "reseller_partner_id", "plan", "contract_status",
    "applied_on", "is_oem", "mypage_postal_code", "mypage_address", "company_info_name",
    "company_info_address",
)  # fmt: skip


def write_people(folder: Path, emails: Iterable[str]) -> Path:
    """A §3 data set: one direct, active customer per address, whose contract manager it is.

    Each address becomes exactly one delivery, in the order given (corp_ids ascend with it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    with (
        (folder / "customers.csv").open("w", encoding="utf-8", newline="") as customers_file,
        (folder / "mypage_contacts.csv").open("w", encoding="utf-8", newline="") as contacts_file,
    ):
        customers = csv.writer(customers_file)
        contacts = csv.writer(contacts_file)
        customers.writerow(_CUSTOMER_COLUMNS)
        contacts.writerow(("corp_id", "role", "name", "email"))
        for i, address in enumerate(emails, start=1):
            corp_id = f"C{i:09d}"
            customers.writerow(
                (
                    corp_id, f"株式会社テスト{i}", "direct", "", "paid", "active", "2021-04-01",
                    "0", "100-0001", f"東京都千代田区1-{i}", f"株式会社テスト{i} 本社",
                    "書類用住所",
                )
            )  # fmt: skip
            contacts.writerow((corp_id, "contract_manager", f"試験 太郎{i}", address))
    return folder
