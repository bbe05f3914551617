"""The paper-mail rule of SPEC §10, one fact at a time (no database)."""

from __future__ import annotations

import pytest

from resolver.model import (
    Audience,
    CampaignPolicy,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    MyPageRole,
    PartnerStatus,
    Plan,
    Product,
)
from resolver.postal import customer_postal_row, partner_postal_row
from tests.resolver.builders import customer_account, mypage, partner_account, partner_contact

ALL = CampaignPolicy()


def test_a_direct_customer_gets_its_my_page_address_and_contract_manager() -> None:
    account = customer_account(
        "C1",
        contacts=[
            mypage("b@example.jp", MyPageRole.BILLING, name="請求 花子"),
            mypage("m@example.jp", MyPageRole.CONTRACT_MANAGER, name="契約\r\n 太郎 "),
        ],
    )
    row = customer_postal_row(account, ALL)
    assert row is not None
    # §10: names sanitized as in message headers
    assert row.cells() == (
        "customer",
        "C1",
        "株式会社C1",
        "100-0001",
        "東京都千代田区 C1",
        "契約 太郎",
    )
    assert not row.missing_address


@pytest.mark.parametrize(
    ("kwargs", "policy"),
    [
        ({"channel": Channel.RESELLER}, ALL),
        ({"status": ContractStatus.TERMINATED}, ALL),
        ({}, CampaignPolicy(audiences=frozenset({Audience.PARTNER}))),
        ({"plan": Plan.FREE}, CampaignPolicy(plans=frozenset({Plan.PAID}))),
        ({}, CampaignPolicy(products=frozenset({Product.PAYROLL}))),
    ],
)
def test_customers_outside_the_list(kwargs: dict[str, object], policy: CampaignPolicy) -> None:
    assert customer_postal_row(customer_account("C1", **kwargs), policy) is None  # type: ignore[arg-type]


def test_a_suspended_customer_without_people_still_gets_a_letter() -> None:
    row = customer_postal_row(customer_account("C1", status=ContractStatus.SUSPENDED), ALL)
    assert row is not None and row.attention == ""


def test_a_partner_is_addressed_to_its_first_active_contact() -> None:
    account = partner_account(
        "P1",
        contacts=[
            partner_contact("K1", "a@example.jp", status=ContactStatus.INACTIVE, name="退職 者"),
            partner_contact(
                "K2", "b@example.jp", role=ContactRole.CERTIFIED_IMPLEMENTER, name="認定 者"
            ),
            partner_contact("K3", "c@example.jp", name="窓口 さん"),
            partner_contact("K4", "d@example.jp", name="二番 目"),
        ],
    )
    row = partner_postal_row(account, ALL)
    assert row is not None and row.attention == "窓口 さん"


def test_a_partner_needs_a_contact_of_a_role_its_audiences_take() -> None:
    inactive_only = partner_account(
        "P1", contacts=[partner_contact("K1", "a@example.jp", status=ContactStatus.INACTIVE)]
    )
    row = partner_postal_row(inactive_only, ALL)  # any status counts; nobody to address it to
    assert row is not None and row.attention == ""
    implementers = CampaignPolicy(audiences=frozenset({Audience.IMPLEMENTATION_PARTNER}))
    assert partner_postal_row(inactive_only, implementers) is None
    assert partner_postal_row(partner_account("P2"), ALL) is None  # no contact at all
    terminated = partner_account(
        "P3", status=PartnerStatus.TERMINATED, contacts=[partner_contact("K9", "x@example.jp")]
    )
    assert partner_postal_row(terminated, ALL) is None
