"""SPEC §4 "Campaign filters": filtered candidates leave the campaign (no audit row)."""

from __future__ import annotations

from resolver.model import (
    Audience,
    CampaignPolicy,
    CustomerAccount,
    ExclusionFilter,
    PartnerAccount,
    Plan,
    Product,
    Source,
)
from resolver.resolve import Resolution
from tests.resolver.builders import (
    customer_account,
    mypage,
    partner_account,
    partner_contact,
    resolve,
    row,
)


def _data() -> tuple[list[CustomerAccount], list[PartnerAccount]]:
    customers = [
        customer_account(
            "C001", plan=Plan.PAID, products=[Product.SALES], contacts=[mypage("c1@example.jp")]
        ),
        customer_account(
            "C002", plan=Plan.FREE, products=[Product.PAYROLL], contacts=[mypage("c2@example.jp")]
        ),
        customer_account("C003", plan=Plan.PAID, products=[], contacts=[mypage("c3@example.jp")]),
    ]
    partners = [partner_account("P001", contacts=[partner_contact("K1", "k1@example.jp")])]
    return customers, partners


def _ids(resolution: Resolution, attr: str) -> list[str]:
    return [x.candidate.account_id for x in getattr(resolution, attr)]


def test_audiences_remove_other_audiences_entirely() -> None:
    customers, partners = _data()
    resolution = resolve(
        customers, partners, policy=CampaignPolicy(audiences=frozenset({Audience.PARTNER}))
    )
    assert _ids(resolution, "rows") == ["P001"]
    assert _ids(resolution, "excluded") == ["C001", "C002", "C003"]
    assert {e.filter for e in resolution.excluded} == {ExclusionFilter.AUDIENCES}
    assert resolution.excluded[0].detail == (
        "audience customer is not in the campaign's audiences (partner)"
    )
    assert [d.email for d in resolution.deliveries] == ["k1@example.jp"]


def test_plans_apply_to_customers_only() -> None:
    customers, partners = _data()
    resolution = resolve(customers, partners, policy=CampaignPolicy(plans=frozenset({Plan.PAID})))
    assert _ids(resolution, "rows") == ["C001", "C003", "P001"]
    (excluded,) = resolution.excluded
    assert (excluded.candidate.account_id, excluded.filter) == ("C002", ExclusionFilter.PLANS)
    assert excluded.detail == "plan free is not in the campaign's plans (paid)"


def test_products_need_an_active_contract_for_at_least_one() -> None:
    customers, partners = _data()
    policy = CampaignPolicy(products=frozenset({Product.PAYROLL, Product.ACCOUNTING}))
    resolution = resolve(customers, partners, policy=policy)
    assert _ids(resolution, "rows") == ["C002", "P001"]
    assert [(e.candidate.account_id, e.filter) for e in resolution.excluded] == [
        ("C001", ExclusionFilter.PRODUCTS),
        ("C003", ExclusionFilter.PRODUCTS),
    ]
    assert resolution.excluded[0].detail == (
        "no active contract for any of the campaign's products (accounting, payroll)"
    )


def test_filtered_address_does_not_take_the_send_row() -> None:
    # C001 would win the dedupe; filtered out, it leaves the delivery to C002.
    customers = [
        customer_account("C001", plan=Plan.FREE, contacts=[mypage("same@example.jp")]),
        customer_account("C002", plan=Plan.PAID, contacts=[mypage("same@example.jp")]),
    ]
    resolution = resolve(customers, policy=CampaignPolicy(plans=frozenset({Plan.PAID})))
    decided = row(resolution, Source.MYPAGE_CONTRACT_MANAGER, "C002")
    assert decided.decision.value == "send"
    assert [a.id for a in resolution.deliveries[0].accounts] == ["C002"]
