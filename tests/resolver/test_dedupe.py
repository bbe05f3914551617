"""SPEC §4 "Dedupe": one delivery per address (or address and account), deterministic `send`."""

from __future__ import annotations

from datetime import date

import pytest

from resolver.model import (
    AccountKind,
    Audience,
    CampaignPolicy,
    ContactRole,
    ContractStatus,
    Decision,
    DedupeMode,
    MyPageRole,
    Reason,
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
    user,
)

SHARED = "zeirishi@kaikei.example.jp"
PER_ACCOUNT = CampaignPolicy(dedupe=DedupeMode.ADDRESS_PER_ACCOUNT)


def _decisions(resolution: Resolution) -> list[tuple[str, str, str, Decision]]:
    return [
        (r.candidate.source.value, r.candidate.account_id, r.candidate.person_id, r.decision)
        for r in resolution.rows
    ]


def test_same_address_in_one_account_is_merged() -> None:
    account = customer_account(
        contacts=[
            mypage("Same.Person@Example.CO.JP", MyPageRole.CONTRACT_MANAGER, name="田中 愛"),
            mypage("same.person@example.co.jp", MyPageRole.BILLING, name="佐々木 花子"),
        ]
    )
    for policy in (CampaignPolicy(), PER_ACCOUNT):
        resolution = resolve([account], policy=policy)
        send = row(resolution, Source.MYPAGE_CONTRACT_MANAGER, "C001")
        merged = row(resolution, Source.MYPAGE_BILLING, "C001")
        assert (send.decision, send.reasons) == (Decision.SEND, (Reason.MYPAGE_CONTACT,))
        assert (merged.decision, merged.reasons) == (
            Decision.MERGED,
            (Reason.MYPAGE_CONTACT, Reason.DUPLICATE_ADDRESS),
        )
        # The delivery goes to the send row's spelling, for both rows.
        assert send.delivery_email == merged.delivery_email == "Same.Person@example.co.jp"
        assert merged.skip_reasons == ()
        (delivery,) = resolution.deliveries
        assert (delivery.email, delivery.name, delivery.seq) == (
            "Same.Person@example.co.jp",
            "田中 愛",
            1,
        )
        (ref,) = delivery.accounts
        assert ref.roles == (Source.MYPAGE_CONTRACT_MANAGER, Source.MYPAGE_BILLING)


def test_address_mode_merges_across_accounts_and_lowest_corp_id_sends() -> None:
    customers = [
        customer_account(
            corp_id,
            contacts=[
                mypage("x@example.jp", MyPageRole.BILLING),
                mypage(SHARED, MyPageRole.CONTRACT_MANAGER),
            ],
        )
        for corp_id in ("C003", "C001", "C002")
    ]
    resolution = resolve(customers)
    shared = [r for r in resolution.rows if r.delivery_key == SHARED]
    assert [(r.candidate.account_id, r.decision) for r in shared] == [
        ("C001", Decision.SEND),
        ("C002", Decision.MERGED),
        ("C003", Decision.MERGED),
    ]
    delivery = next(d for d in resolution.deliveries if d.key == SHARED)
    assert [(a.kind, a.id, a.roles) for a in delivery.accounts] == [
        (AccountKind.CUSTOMER, c, (Source.MYPAGE_CONTRACT_MANAGER,))
        for c in ("C001", "C002", "C003")
    ]
    # §6: the postal address is the My Page one.
    assert delivery.accounts[0].postal_code == "100-0001"
    assert delivery.accounts[0].address == "東京都千代田区 C001"
    assert delivery.accounts[0].name == "株式会社C001"


def test_address_per_account_mode_sends_once_per_account() -> None:
    customers = [
        customer_account(corp_id, contacts=[mypage(SHARED)]) for corp_id in ("C002", "C001")
    ]
    resolution = resolve(customers, policy=PER_ACCOUNT)
    assert [(r.candidate.account_id, r.decision, r.delivery_key) for r in resolution.rows] == [
        ("C001", Decision.SEND, f"{SHARED}|C001"),
        ("C002", Decision.SEND, f"{SHARED}|C002"),
    ]
    assert [d.key for d in resolution.deliveries] == [f"{SHARED}|C001", f"{SHARED}|C002"]


def test_source_order_then_person_id_decides_within_an_account() -> None:
    account = customer_account(
        contacts=[mypage(SHARED, MyPageRole.BILLING)],
        users=[
            user("u2", SHARED),
            user("u10", SHARED),
            user("admin", SHARED.upper(), admin=False),
        ],
    )
    resolution = resolve([account])
    assert _decisions(resolution) == [
        ("mypage_billing", "C001", "", Decision.SEND),
        ("legacy_admin", "C001", "admin", Decision.MERGED),
        ("system_admin", "C001", "u10", Decision.MERGED),
        ("system_admin", "C001", "u2", Decision.MERGED),
    ]
    (delivery,) = resolution.deliveries
    assert delivery.reasons == (Reason.MYPAGE_CONTACT, Reason.LEGACY_ADMIN, Reason.SYSTEM_ADMIN)
    assert delivery.accounts[0].roles == (
        Source.MYPAGE_BILLING,
        Source.LEGACY_ADMIN,
        Source.SYSTEM_ADMIN,
    )


def test_audience_order_beats_account_id() -> None:
    """A customer sends before a partner, a partner contact before a certified implementer."""
    customers = [customer_account("C999", users=[user("u01", SHARED)])]
    partners = [
        partner_account(
            "P001",
            contacts=[
                partner_contact(
                    "K1",
                    SHARED,
                    role=ContactRole.CERTIFIED_IMPLEMENTER,
                    certified_until=date(2030, 1, 1),
                )
            ],
        ),
        partner_account("P002", contacts=[partner_contact("K9", SHARED)]),
    ]
    for with_customer in (True, False):
        resolution = resolve(customers if with_customer else [], partners)
        expected = [("system_admin", "C999", "u01")] if with_customer else []
        expected += [("partner_contact", "P002", "K9"), ("certified_implementer", "P001", "K1")]
        assert [tuple(d[:3]) for d in _decisions(resolution)] == expected
        assert [d[3] for d in _decisions(resolution)] == [Decision.SEND] + [Decision.MERGED] * (
            len(expected) - 1
        )
        (delivery,) = resolution.deliveries
        assert delivery.audience is (Audience.CUSTOMER if with_customer else Audience.PARTNER)
        assert [a.kind for a in delivery.accounts][-2:] == [AccountKind.PARTNER] * 2
        assert delivery.accounts[-1].postal_code == "530-0001"
        assert delivery.reasons[-2:] == (Reason.PARTNER_CONTACT, Reason.CERTIFIED_IMPLEMENTER)


def test_partner_rows_of_one_partner_follow_audience_order() -> None:
    partner = partner_account(
        "P001",
        contacts=[
            partner_contact(
                "K1",
                "k1@example.jp",
                role=ContactRole.CERTIFIED_IMPLEMENTER,
                certified_until=date(2030, 1, 1),
            ),
            partner_contact("K2", "k2@example.jp"),
        ],
    )
    resolution = resolve(
        partners=[
            partner,
            partner_account("P002", contacts=[partner_contact("K3", "k3@example.jp")]),
        ]
    )
    assert [d.email for d in resolution.deliveries] == [
        "k2@example.jp",
        "k3@example.jp",
        "k1@example.jp",
    ]
    assert [r.candidate.person_id for r in resolution.rows] == ["K2", "K3", "K1"]


def test_skipped_candidates_never_take_part_in_dedupe() -> None:
    customers = [
        customer_account("C001", contacts=[mypage(SHARED)], status=ContractStatus.TERMINATED),
        customer_account("C002", contacts=[mypage(SHARED)]),
    ]
    resolution = resolve(customers)
    assert [(r.candidate.account_id, r.decision) for r in resolution.rows] == [
        ("C001", Decision.SKIP),
        ("C002", Decision.SEND),
    ]


def test_many_accounts_on_one_address_keep_one_ref_each() -> None:
    # More accounts than the builder scans linearly: partners revisit earlier accounts.
    partners = [
        partner_account(
            f"P{i:03}",
            contacts=[
                partner_contact(f"K{i:03}a", SHARED),
                partner_contact(
                    f"K{i:03}b",
                    SHARED,
                    role=ContactRole.CERTIFIED_IMPLEMENTER,
                    certified_until=date(2030, 1, 1),
                ),
            ],
        )
        for i in range(12)
    ]
    (delivery,) = resolve(partners=partners).deliveries
    assert [a.id for a in delivery.accounts] == [f"P{i:03}" for i in range(12)]
    assert {a.roles for a in delivery.accounts} == {
        (Source.PARTNER_CONTACT, Source.CERTIFIED_IMPLEMENTER)
    }


@pytest.mark.parametrize("mode", list(DedupeMode))
def test_deliveries_are_numbered_in_first_seen_order(mode: DedupeMode) -> None:
    customers = [
        customer_account(
            "C001", contacts=[mypage("b@example.jp"), mypage("a@example.jp", MyPageRole.BILLING)]
        ),
        customer_account("C002", contacts=[mypage("a@example.jp")]),
    ]
    resolution = resolve(customers, policy=CampaignPolicy(dedupe=mode))
    assert [(d.seq, d.email) for d in resolution.deliveries][:2] == [
        (1, "b@example.jp"),
        (2, "a@example.jp"),
    ]
    assert len(resolution.deliveries) == (2 if mode is DedupeMode.ADDRESS else 3)
