"""SPEC §4 "Warnings": reported for the operator, never a decision."""

from __future__ import annotations

from datetime import date

import pytest

from resolver.model import (
    AccountType,
    Audience,
    CampaignPolicy,
    Channel,
    ContractStatus,
    Decision,
    MyPageRole,
    Plan,
    Source,
    UserStatus,
    Warning,
    WarningCode,
)
from resolver.resolve import Resolution
from tests.resolver.builders import (
    customer_account,
    mypage,
    partner_account,
    partner_contact,
    resolve,
    row,
    user,
)


def _codes(resolution: Resolution) -> list[tuple[WarningCode, str, str]]:
    return [(w.code, w.account_id, w.person_id) for w in resolution.warnings]


def test_email_normalized() -> None:
    account = customer_account(contacts=[mypage("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ")])
    resolution = resolve([account])
    (warning,) = resolution.warnings
    assert warning == Warning(
        code=WarningCode.EMAIL_NORMALIZED,
        account_id="C001",
        person_id="",
        email="ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ",
        detail=(
            "Address ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ of My Page contract manager of C001 was"
            " normalized to taro@example.jp."
        ),
    )
    decided = row(resolution, Source.MYPAGE_CONTRACT_MANAGER, "C001")
    assert (decided.decision, decided.delivery_email) == (Decision.SEND, "taro@example.jp")


def test_email_normalized_but_still_invalid() -> None:
    account = customer_account(users=[user("u01", "ｔａｒｏ＠＠example.jp")])
    resolution = resolve([account])
    assert row(resolution, Source.SYSTEM_ADMIN, "C001", "u01").decision is Decision.SKIP
    normalized = next(w for w in resolution.warnings if w.code is WarningCode.EMAIL_NORMALIZED)
    assert normalized.detail.endswith(
        "was normalized to taro@@example.jp, which is still not a valid address."
    )


def test_header_sanitized() -> None:
    contact = partner_contact("K1", "k1@example.jp", name="中村\n恵")
    resolution = resolve(partners=[partner_account(contacts=[contact])])
    (warning,) = resolution.warnings
    assert (warning.code, warning.account_id, warning.person_id, warning.email) == (
        WarningCode.HEADER_SANITIZED,
        "P001",
        "K1",
        "k1@example.jp",
    )
    assert "partner contact K1 of P001" in warning.detail and "中村恵" in warning.detail
    assert resolution.deliveries[0].name == "中村恵"


@pytest.mark.parametrize(
    ("applied_on", "is_oem", "warned"),
    [
        (date(2019, 9, 24), False, True),  # on the cut-off day
        (date(2023, 6, 1), False, True),
        (date(2019, 9, 23), False, False),  # before: admin was issued then
        (date(2023, 6, 1), True, False),  # OEM contracts may have admin
        (None, False, False),
    ],
)
def test_admin_after_cutoff(applied_on: date | None, is_oem: bool, warned: bool) -> None:
    account = customer_account(
        applied_on=applied_on,
        is_oem=is_oem,
        contacts=[mypage("boss@example.jp")],
        users=[user("Admin", "admin@example.jp", admin=False, status=UserStatus.LOCKED)],
    )
    expected = [(WarningCode.ADMIN_AFTER_CUTOFF, "C001", "Admin")] if warned else []
    assert _codes(resolve([account])) == expected


def test_admin_after_cutoff_once_per_customer_even_for_a_reseller_customer() -> None:
    account = customer_account(
        applied_on=date(2020, 1, 1),
        channel=Channel.RESELLER,
        users=[user("admin", "a@example.jp"), user("ADMIN", "b@example.jp")],
    )
    resolution = resolve([account])
    assert [w.code for w in resolution.warnings] == [WarningCode.ADMIN_AFTER_CUTOFF]
    assert "2020-01-01" in resolution.warnings[0].detail


def test_unreachable_customer_when_every_candidate_is_skipped() -> None:
    account = customer_account(
        applied_on=date(2016, 3, 1),
        status=ContractStatus.SUSPENDED,
        contacts=[mypage("")],
        users=[user("u01", "u@example.jp", account_type=AccountType.GROUP)],
    )
    (warning,) = resolve([account]).warnings
    assert (warning.code, warning.account_id, warning.person_id, warning.email) == (
        WarningCode.UNREACHABLE_CUSTOMER,
        "C001",
        "",
        "",
    )
    assert "all 2 recipients" in warning.detail


def test_unreachable_customer_without_any_candidate() -> None:
    account = customer_account(users=[user("staff", "s@example.jp", admin=False)])
    (warning,) = resolve([account]).warnings
    assert warning.code is WarningCode.UNREACHABLE_CUSTOMER
    assert "no My Page contact" in warning.detail


def test_a_merged_row_makes_a_customer_reachable() -> None:
    customers = [
        customer_account("C001", contacts=[mypage("shared@example.jp")]),
        customer_account("C002", contacts=[mypage("shared@example.jp")]),
    ]
    resolution = resolve(customers)
    assert row(resolution, Source.MYPAGE_CONTRACT_MANAGER, "C002").decision is Decision.MERGED
    assert resolution.warnings == ()


@pytest.mark.parametrize(
    "facts",
    [
        {"channel": Channel.RESELLER},
        {"status": ContractStatus.TERMINATED},
    ],
)
def test_no_unreachable_warning_for_reseller_or_terminated_customers(
    facts: dict[str, object],
) -> None:
    account = customer_account(contacts=[mypage("a@example.jp")], **facts)  # type: ignore[arg-type]
    resolution = resolve([account])
    assert resolution.rows[0].decision is Decision.SKIP
    assert resolution.warnings == ()


def test_customers_outside_the_campaign_raise_no_warning() -> None:
    account = customer_account(
        plan=Plan.FREE,
        applied_on=date(2023, 6, 1),
        contacts=[mypage("ｔａｒｏ＠example.jp", name="山田\r太郎")],
        users=[user("admin", "")],
    )
    for policy in (
        CampaignPolicy(plans=frozenset({Plan.PAID})),
        CampaignPolicy(audiences=frozenset({Audience.PARTNER})),
    ):
        resolution = resolve([account], policy=policy)
        assert resolution.rows == () and len(resolution.excluded) == 2
        assert resolution.warnings == ()
    inside = resolve([account])
    assert sorted(w.code for w in inside.warnings) == sorted(
        [
            WarningCode.EMAIL_NORMALIZED,
            WarningCode.HEADER_SANITIZED,
            WarningCode.ADMIN_AFTER_CUTOFF,
        ]
    )


def test_billing_contact_alone_keeps_the_customer_reachable() -> None:
    account = customer_account(
        contacts=[
            mypage("", MyPageRole.CONTRACT_MANAGER),
            mypage("b@example.jp", MyPageRole.BILLING),
        ]
    )
    assert resolve([account]).warnings == ()
