"""Every SPEC §4 edge case occurs several times, seen in the CSV rows themselves (not resolved).

Each detector reads the raw rows with its own idea of the case, independent of how the
generator plants it, so a generator that stops producing a case fails here.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

import pytest

from tests.demo.demo_set import DemoSet
from tools.demo_data import ADMIN_CUTOFF, DEMO_AS_OF, EdgeCase

SEVERAL = 3
CUTOFF = ADMIN_CUTOFF.isoformat()
AS_OF = DEMO_AS_OF.isoformat()

Row = dict[str, str]


def _key(email: str) -> str:
    return unicodedata.normalize("NFKC", email.strip()).strip().lower()


def _people(d: DemoSet) -> list[Row]:
    return d["mypage_contacts.csv"] + d["users.csv"] + d["partner_contacts.csv"]


def _count(rows: Iterable[Row], predicate: Callable[[Row], bool]) -> int:
    return sum(1 for row in rows if predicate(row))


def _admin_customers(d: DemoSet) -> list[Row]:
    with_admin = {r["corp_id"] for r in d["users.csv"] if r["user_id"].lower() == "admin"}
    return [c for c in d["customers.csv"] if c["corp_id"] in with_admin]


def _customers_with(d: DemoSet, file: str, predicate: Callable[[Row], bool]) -> set[str]:
    return {r["corp_id"] for r in d[file] if predicate(r)}


def reseller_with_sysadmin(d: DemoSet) -> int:
    admins = _customers_with(
        d, "users.csv", lambda u: u["is_system_admin"] == "1" and u["account_type"] == "normal"
    )
    return _count(
        d["customers.csv"], lambda c: c["channel"] == "reseller" and c["corp_id"] in admins
    )


def _direct_with_contacts(d: DemoSet, status: str) -> int:
    reachable = _customers_with(d, "mypage_contacts.csv", lambda r: bool(r["email"].strip()))
    return _count(
        d["customers.csv"],
        lambda c: (
            c["channel"] == "direct"
            and c["contract_status"] == status
            and c["corp_id"] in reachable
        ),
    )


def _users(flag: str, **wanted: str) -> Callable[[DemoSet], int]:
    def detect(d: DemoSet) -> int:
        return _count(
            d["users.csv"],
            lambda u: u["is_system_admin"] == flag and all(u[k] == v for k, v in wanted.items()),
        )

    return detect


def unreachable(d: DemoSet) -> int:
    contacts = _customers_with(d, "mypage_contacts.csv", lambda r: True)
    admins = _customers_with(
        d, "users.csv", lambda u: u["is_system_admin"] == "1" or u["user_id"].lower() == "admin"
    )
    return _count(
        d["customers.csv"],
        lambda c: (
            c["channel"] == "direct"
            and c["contract_status"] != "terminated"
            and c["corp_id"] not in contacts | admins
        ),
    )


def _emails(predicate: Callable[[str], bool]) -> Callable[[DemoSet], int]:
    def detect(d: DemoSet) -> int:
        return _count(_people(d), lambda r: predicate(r["email"]))

    return detect


def _upper_case_domain(email: str) -> bool:
    _, at, domain = email.strip().partition("@")
    return bool(at) and email.isascii() and "@" not in domain and domain != domain.lower()


def _suppressed(reason: str) -> Callable[[DemoSet], int]:
    def detect(d: DemoSet) -> int:
        keys = {_key(r["email"]) for r in _people(d)}
        return _count(
            d["suppressions.csv"], lambda s: s["reason"] == reason and _key(s["email"]) in keys
        )

    return detect


def suppressed_other_case(d: DemoSet) -> int:
    spellings = defaultdict(set)
    for r in _people(d):
        spellings[_key(r["email"])].add(r["email"].strip())
    return _count(
        d["suppressions.csv"],
        lambda s: _key(s["email"]) in spellings and s["email"] not in spellings[_key(s["email"])],
    )


def duplicate_in_customer(d: DemoSet) -> int:
    by_corp: dict[str, dict[str, str]] = defaultdict(dict)
    for r in d["mypage_contacts.csv"]:
        by_corp[r["corp_id"]][r["role"]] = _key(r["email"])
    return sum(
        1
        for roles in by_corp.values()
        if roles.get("contract_manager") and roles.get("contract_manager") == roles.get("billing")
    )


def duplicate_across_customers(d: DemoSet) -> int:
    corps: dict[str, set[str]] = defaultdict(set)
    for r in d["mypage_contacts.csv"]:
        if "@" in r["email"]:
            corps[_key(r["email"])].add(r["corp_id"])
    # customers whose billing address is one that at least three customers share
    return sum(len(c) for c in corps.values() if len(c) >= SEVERAL)


def duplicate_customer_partner(d: DemoSet) -> int:
    partner_keys = {_key(r["email"]) for r in d["partner_contacts.csv"] if r["email"].strip()}
    return _count(d["mypage_contacts.csv"], lambda r: _key(r["email"]) in partner_keys)


def name_control_characters(d: DemoSet) -> int:
    return _count(_people(d), lambda r: any(unicodedata.category(ch) == "Cc" for ch in r["name"]))


def _not_iso_2022_jp(name: str) -> bool:
    try:
        name.encode("iso-2022-jp")
    except UnicodeEncodeError:
        return True
    return False


def _companies(predicate: Callable[[str], bool]) -> Callable[[DemoSet], int]:
    def detect(d: DemoSet) -> int:
        return _count(d["customers.csv"], lambda c: predicate(c["company_name"]))

    return detect


def partner_terminated(d: DemoSet) -> int:
    with_active_contacts = {
        r["partner_id"] for r in d["partner_contacts.csv"] if r["status"] == "active"
    }
    return _count(
        d["partners.csv"],
        lambda p: p["status"] == "terminated" and p["partner_id"] in with_active_contacts,
    )


def contact_inactive(d: DemoSet) -> int:
    active = {p["partner_id"] for p in d["partners.csv"] if p["status"] == "active"}
    return _count(
        d["partner_contacts.csv"],
        lambda r: r["status"] == "inactive" and r["partner_id"] in active,
    )


def _certified(predicate: Callable[[str], bool]) -> Callable[[DemoSet], int]:
    def detect(d: DemoSet) -> int:
        return _count(
            d["partner_contacts.csv"],
            lambda r: r["role"] == "certified_implementer" and predicate(r["certified_until"]),
        )

    return detect


DETECTORS: dict[EdgeCase, Callable[[DemoSet], int]] = {
    EdgeCase.RESELLER_WITH_SYSADMIN: reseller_with_sysadmin,
    EdgeCase.TERMINATED_CUSTOMER: lambda d: _direct_with_contacts(d, "terminated"),
    EdgeCase.SUSPENDED_CUSTOMER: lambda d: _direct_with_contacts(d, "suspended"),
    EdgeCase.GROUP_ACCOUNT_SYSADMIN: _users("1", account_type="group"),
    EdgeCase.LOCKED_SYSADMIN: _users("1", status="locked"),
    EdgeCase.DELETED_SYSADMIN: _users("1", status="deleted"),
    EdgeCase.ADMIN_FLAG_0: _users("0", user_id="admin"),
    EdgeCase.ADMIN_FLAG_1: _users("1", user_id="admin"),
    EdgeCase.ADMIN_OTHER_CASE: lambda d: _count(
        d["users.csv"], lambda u: u["user_id"] in ("Admin", "ADMIN")
    ),
    EdgeCase.ADMIN_AFTER_CUTOFF: lambda d: _count(
        _admin_customers(d), lambda c: c["is_oem"] == "0" and c["applied_on"] >= CUTOFF
    ),
    EdgeCase.ADMIN_OEM: lambda d: _count(_admin_customers(d), lambda c: c["is_oem"] == "1"),
    EdgeCase.ADMIN_BEFORE_CUTOFF: lambda d: _count(
        _admin_customers(d), lambda c: c["is_oem"] == "0" and c["applied_on"] < CUTOFF
    ),
    EdgeCase.EMAIL_EMPTY: _emails(lambda e: e == ""),
    EdgeCase.EMAIL_SPACES_ONLY: _emails(lambda e: e != "" and e.strip() == ""),
    EdgeCase.EMAIL_NO_AT: _emails(lambda e: bool(e.strip()) and "@" not in _key(e)),
    EdgeCase.EMAIL_DOUBLE_AT: _emails(lambda e: _key(e).count("@") >= 2),
    EdgeCase.EMAIL_TRAILING_DOT: _emails(lambda e: e.strip().endswith(".")),
    EdgeCase.EMAIL_FULL_WIDTH: _emails(lambda e: "＠" in e and _key(e).isascii()),
    EdgeCase.EMAIL_UPPER_CASE_DOMAIN: _emails(_upper_case_domain),
    EdgeCase.EMAIL_SURROUNDING_SPACES: _emails(lambda e: bool(e.strip()) and e != e.strip()),
    EdgeCase.SUPPRESSED_HARD_BOUNCE: _suppressed("hard_bounce"),
    EdgeCase.SUPPRESSED_COMPLAINT: _suppressed("complaint"),
    EdgeCase.SUPPRESSED_MANUAL: _suppressed("manual"),
    EdgeCase.SUPPRESSED_OTHER_CASE: suppressed_other_case,
    EdgeCase.DUPLICATE_IN_CUSTOMER: duplicate_in_customer,
    EdgeCase.DUPLICATE_ACROSS_CUSTOMERS: duplicate_across_customers,
    EdgeCase.DUPLICATE_CUSTOMER_PARTNER: duplicate_customer_partner,
    EdgeCase.UNREACHABLE: unreachable,
    EdgeCase.NAME_CONTROL_CHARACTERS: name_control_characters,
    EdgeCase.COMPANY_NOT_ISO_2022_JP: _companies(_not_iso_2022_jp),
    EdgeCase.COMPANY_HTML_SPECIAL: _companies(lambda n: re.search(r'[<>&"]', n) is not None),
    EdgeCase.COMPANY_LONG_NAME: _companies(lambda n: len(n) >= 50),
    EdgeCase.PARTNER_TERMINATED: partner_terminated,
    EdgeCase.CONTACT_INACTIVE: contact_inactive,
    EdgeCase.CERTIFICATION_EXPIRED: _certified(lambda u: u != "" and u < AS_OF),
    EdgeCase.CERTIFICATION_EMPTY: _certified(lambda u: u == ""),
    EdgeCase.CERTIFICATION_ON_AS_OF: _certified(lambda u: u == AS_OF),
    EdgeCase.CERTIFICATION_FUTURE: _certified(lambda u: u > AS_OF),
    EdgeCase.CONTACT_WITH_CERTIFIED_UNTIL: lambda d: _count(
        d["partner_contacts.csv"], lambda r: r["role"] == "contact" and r["certified_until"] != ""
    ),
}


def test_every_edge_case_has_a_detector() -> None:
    assert set(DETECTORS) == set(EdgeCase)


@pytest.mark.parametrize("edge", list(EdgeCase), ids=str)
def test_edge_case_occurs_several_times(demo: DemoSet, edge: EdgeCase) -> None:
    assert DETECTORS[edge](demo) >= SEVERAL


def test_cutoff_boundaries_are_planted_on_the_day(demo: DemoSet) -> None:
    # §4: "on or after 2019-09-24" warns, the day before does not: both days must be there.
    days = Counter(c["applied_on"] for c in _admin_customers(demo) if c["is_oem"] == "0")
    assert days[CUTOFF] >= 1
    assert days["2019-09-23"] >= 1


def test_one_accounting_firm_is_the_billing_contact_of_many(demo_3000: DemoSet) -> None:
    billing = Counter(
        _key(r["email"]) for r in demo_3000["mypage_contacts.csv"] if r["role"] == "billing"
    )
    address, customers = billing.most_common(1)[0]
    assert customers >= 10
    assert "kaikei" in address


def test_clean_addresses_dominate(demo_3000: DemoSet) -> None:
    # The dirt is noise on a realistic register, not the register itself.
    clean = re.compile(
        r"[a-z0-9.\-]+@(example\.co\.jp|example\.jp|example\.com|mail\.example\.ne\.jp)"
    )
    people = _people(demo_3000)
    assert _count(people, lambda r: clean.fullmatch(r["email"]) is not None) / len(people) > 0.95
