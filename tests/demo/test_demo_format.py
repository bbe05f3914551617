"""Every generated row is valid SPEC §3 input, checked with the csv module alone."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import date
from pathlib import Path

from tests.demo.demo_set import DemoSet
from tools.demo_data import DEMO_AS_OF, DEMO_DOMAINS, FILES

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
POSTAL = re.compile(r"\d{3}-\d{4}")
CORP_ID = re.compile(r"C\d{9}")
PARTNER_ID = re.compile(r"P\d{7}")
CONTACT_ID = re.compile(r"K\d{8}")
USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

ENUMS = {
    ("customers.csv", "channel"): {"direct", "reseller"},
    ("customers.csv", "plan"): {"free", "paid"},
    ("customers.csv", "contract_status"): {"active", "suspended", "terminated"},
    ("customers.csv", "is_oem"): {"0", "1"},
    ("mypage_contacts.csv", "role"): {"contract_manager", "billing"},
    ("users.csv", "is_system_admin"): {"0", "1"},
    ("users.csv", "account_type"): {"normal", "group"},
    ("users.csv", "status"): {"active", "locked", "deleted"},
    ("partners.csv", "kind"): {"reseller", "partner", "implementation"},
    ("partners.csv", "status"): {"active", "terminated"},
    ("partner_contacts.csv", "role"): {"contact", "certified_implementer"},
    ("partner_contacts.csv", "status"): {"active", "inactive"},
    ("contracts.csv", "product"): {"sales", "accounting", "payroll"},
    ("contracts.csv", "status"): {"active", "terminated"},
    ("suppressions.csv", "reason"): {"hard_bounce", "complaint", "manual"},
}


def _is_date(text: str) -> bool:
    if not DATE.fullmatch(text):
        return False
    date.fromisoformat(text)
    return True


def _key(email: str) -> str:
    return unicodedata.normalize("NFKC", email.strip()).strip().lower()


def test_headers_match_the_shared_sample_data(demo: DemoSet, sample_data: Path) -> None:
    for name in FILES:
        with (sample_data / name).open(encoding="utf-8") as handle:
            expected = handle.readline().strip().split(",")
        assert demo.headers[name] == expected, name


def test_files_are_plain_utf8_with_crlf_records(demo: DemoSet) -> None:
    # §3: UTF-8 (a BOM is accepted, we write none) and RFC 4180 CRLF line breaks.
    for name in FILES:
        raw = (demo.directory / name).read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf"), name
        raw.decode("utf-8")
        assert raw.endswith(b"\r\n"), name
        assert raw.count(b"\r\n") >= len(demo[name]) + 1, name


def test_enumerations_are_exact(demo: DemoSet) -> None:
    for (file, column), allowed in ENUMS.items():
        seen = {row[column] for row in demo[file]}
        assert seen <= allowed, (file, column, seen - allowed)
        assert seen, (file, column)


def test_ids_have_their_shapes_and_keys_are_unique(demo: DemoSet) -> None:
    corp_ids = [r["corp_id"] for r in demo["customers.csv"]]
    assert all(CORP_ID.fullmatch(c) for c in corp_ids)
    assert len(set(corp_ids)) == len(corp_ids)
    partner_ids = [r["partner_id"] for r in demo["partners.csv"]]
    assert all(PARTNER_ID.fullmatch(p) for p in partner_ids)
    assert len(set(partner_ids)) == len(partner_ids)
    contact_ids = [r["contact_id"] for r in demo["partner_contacts.csv"]]
    assert all(CONTACT_ID.fullmatch(k) for k in contact_ids)
    assert len(set(contact_ids)) == len(contact_ids)
    users = [(r["corp_id"], r["user_id"].lower()) for r in demo["users.csv"]]
    assert all(USER_ID.fullmatch(r["user_id"]) for r in demo["users.csv"])
    # unique even case-insensitively: `Admin` and `admin` never share one customer
    assert len(set(users)) == len(users)
    roles = [(r["corp_id"], r["role"]) for r in demo["mypage_contacts.csv"]]
    assert len(set(roles)) == len(roles)
    products = [(r["corp_id"], r["product"]) for r in demo["contracts.csv"]]
    assert len(set(products)) == len(products)
    keys = [_key(r["email"]) for r in demo["suppressions.csv"]]
    assert len(set(keys)) == len(keys)
    assert all(keys)


def test_every_reference_resolves(demo: DemoSet) -> None:
    corp_ids = {r["corp_id"] for r in demo["customers.csv"]}
    partners = {r["partner_id"]: r for r in demo["partners.csv"]}
    for file in ("mypage_contacts.csv", "users.csv", "contracts.csv"):
        assert {r["corp_id"] for r in demo[file]} <= corp_ids, file
    assert {r["partner_id"] for r in demo["partner_contacts.csv"]} <= set(partners)
    for row in demo["customers.csv"]:
        if row["channel"] == "reseller":
            assert partners[row["reseller_partner_id"]]["kind"] == "reseller", row["corp_id"]
        else:
            assert row["reseller_partner_id"] == "", row["corp_id"]
    # every partner has 1-4 contacts
    per_partner = Counter(r["partner_id"] for r in demo["partner_contacts.csv"])
    assert set(per_partner) == set(partners)
    assert all(1 <= n <= 4 for n in per_partner.values())


def test_dates_booleans_and_postal_codes(demo: DemoSet) -> None:
    for row in demo["customers.csv"]:
        assert _is_date(row["applied_on"]), row
        assert date.fromisoformat(row["applied_on"]) < DEMO_AS_OF
        assert POSTAL.fullmatch(row["mypage_postal_code"]), row
        assert row["company_name"] and row["mypage_address"]
    for row in demo["partners.csv"]:
        assert POSTAL.fullmatch(row["postal_code"]) and row["address"] and row["name"]
    for row in demo["partner_contacts.csv"]:
        assert row["certified_until"] == "" or _is_date(row["certified_until"]), row
    for row in demo["suppressions.csv"]:
        assert _is_date(row["created_on"]), row


def test_company_info_never_equals_my_page(demo: DemoSet) -> None:
    # §2: the company-info address book must be told apart from My Page in every row.
    for row in demo["customers.csv"]:
        assert row["company_info_name"] != row["company_name"], row["corp_id"]
        assert row["company_info_address"] != row["mypage_address"], row["corp_id"]
        assert row["mypage_address"] not in row["company_info_address"], row["corp_id"]


def test_every_address_is_under_an_example_domain(demo: DemoSet) -> None:
    people = (
        demo["mypage_contacts.csv"]
        + demo["users.csv"]
        + demo["partner_contacts.csv"]
        + demo["suppressions.csv"]
    )
    for row in people:
        key = _key(row["email"]).rstrip(".")
        if not key:
            continue
        domain = key.rpartition("@")[2] if "@" in key else key
        assert any(domain == d or domain.endswith("." + d) for d in DEMO_DOMAINS), row["email"]


def test_people_have_japanese_names_with_a_space(demo: DemoSet) -> None:
    people = [
        r
        for r in demo["mypage_contacts.csv"] + demo["users.csv"] + demo["partner_contacts.csv"]
        if r.get("account_type") != "group" and r["name"].isprintable()
    ]
    spaced = sum(1 for r in people if re.fullmatch(r"\S+ \S+", r["name"]))
    assert spaced == len(people)


def test_proportions_look_like_production(demo_3000: DemoSet) -> None:
    customers = demo_3000["customers.csv"]
    n = len(customers)
    assert n == 3000
    channels = Counter(r["channel"] for r in customers)
    assert 0.6 < channels["direct"] / n < 0.8
    statuses = Counter(r["contract_status"] for r in customers)
    assert statuses["active"] / n > 0.8
    assert statuses["suspended"] > 0 and statuses["terminated"] > 0
    assert {r["plan"] for r in customers} == {"free", "paid"}

    contacts = Counter(r["corp_id"] for r in demo_3000["mypage_contacts.csv"])
    assert set(contacts.values()) == {1, 2}
    users = Counter(r["corp_id"] for r in demo_3000["users.csv"])
    assert set(users.values()) <= set(range(1, 9))
    assert len(users) == n
    admins = Counter(
        r["corp_id"]
        for r in demo_3000["users.csv"]
        if r["is_system_admin"] == "1" and r["account_type"] == "normal"
    )
    assert sum(1 for c in admins.values() if c in (1, 2)) / n > 0.9
    products = Counter(r["corp_id"] for r in demo_3000["contracts.csv"])
    assert set(products.values()) == {1, 2, 3}
    assert len(products) == n
    assert 30 <= len(demo_3000["partners.csv"]) <= 60
    assert {r["kind"] for r in demo_3000["partners.csv"]} == {
        "reseller",
        "partner",
        "implementation",
    }


def test_terminated_customers_have_no_active_contract(demo: DemoSet) -> None:
    ended = {r["corp_id"] for r in demo["customers.csv"] if r["contract_status"] == "terminated"}
    live_products = Counter(r["corp_id"] for r in demo["contracts.csv"] if r["status"] == "active")
    assert ended and not ended & set(live_products)
    live = {r["corp_id"] for r in demo["customers.csv"]} - ended
    assert live <= set(live_products)
    assert any(r["status"] == "terminated" and r["corp_id"] in live for r in demo["contracts.csv"])
