"""SPEC §4 "Candidates": who is a candidate, with which source and audience, in which order."""

from __future__ import annotations

from datetime import date

from resolver.candidates import customer_candidates, non_candidates, partner_candidates
from resolver.model import (
    Audience,
    ContactRole,
    Decision,
    MyPageRole,
    Reason,
    Source,
)
from tests.resolver.builders import (
    customer_account,
    mypage,
    partner_account,
    partner_contact,
    resolve,
    row,
    user,
)


def _keys(candidates: tuple[object, ...]) -> list[tuple[str, str]]:
    return [(c.source.value, c.person_id) for c in candidates]  # type: ignore[attr-defined]


def test_customer_candidates_in_source_then_person_order() -> None:
    account = customer_account(
        contacts=[
            mypage("bill@example.jp", MyPageRole.BILLING),
            mypage("boss@example.jp", MyPageRole.CONTRACT_MANAGER),
        ],
        users=[
            user("u9", "u9@example.jp"),
            user("u10", "u10@example.jp"),
            user("staff", "staff@example.jp", admin=False),
            user("admin", "admin@example.jp", admin=True),
        ],
    )
    candidates = customer_candidates(account)
    assert _keys(candidates) == [
        ("mypage_contract_manager", ""),
        ("mypage_billing", ""),
        ("legacy_admin", "admin"),
        ("system_admin", "u10"),  # Python str order: "u10" < "u9"
        ("system_admin", "u9"),
    ]
    assert {c.audience for c in candidates} == {Audience.CUSTOMER}
    assert {c.account_name for c in candidates} == {"株式会社C001"}
    assert [u.user_id for u in non_candidates(account)] == ["staff"]


def test_admin_is_case_insensitive_and_needs_no_flag() -> None:
    account = customer_account(
        users=[user("ADMIN", "a1@example.jp", admin=False), user("Admin", "a2@example.jp")]
    )
    candidates = customer_candidates(account)
    assert _keys(candidates) == [("legacy_admin", "ADMIN"), ("legacy_admin", "Admin")]
    resolution = resolve([account])
    assert row(resolution, Source.LEGACY_ADMIN, "C001", "ADMIN").reasons == (Reason.LEGACY_ADMIN,)
    assert non_candidates(account) == ()


def test_a_user_is_one_candidate_at_most() -> None:
    account = customer_account(users=[user("admin", "admin@example.jp", admin=True)])
    (only,) = customer_candidates(account)
    assert only.source is Source.LEGACY_ADMIN


def test_administrator_flag_makes_a_system_admin_and_no_flag_nothing() -> None:
    account = customer_account(
        users=[
            user("kanri", "k@example.jp", admin=True),
            user("staff", "s@example.jp", admin=False),
        ]
    )
    resolution = resolve([account])
    assert [(r.candidate.person_id, r.decision) for r in resolution.rows] == [
        ("kanri", Decision.SEND)
    ]


def test_partner_roles_decide_source_and_audience() -> None:
    account = partner_account(
        contacts=[
            partner_contact(
                "K2",
                "k2@example.jp",
                role=ContactRole.CERTIFIED_IMPLEMENTER,
                certified_until=date(2027, 1, 1),
            ),
            partner_contact("K3", "k3@example.jp"),
            partner_contact("K1", "k1@example.jp"),
        ]
    )
    candidates = partner_candidates(account)
    assert [(c.source, c.audience, c.person_id) for c in candidates] == [
        (Source.PARTNER_CONTACT, Audience.PARTNER, "K1"),
        (Source.PARTNER_CONTACT, Audience.PARTNER, "K3"),
        (Source.CERTIFIED_IMPLEMENTER, Audience.IMPLEMENTATION_PARTNER, "K2"),
    ]
    assert {c.account_name for c in candidates} == {"合同会社P001"}
    assert all(c.customer is None and c.partner is account.partner for c in candidates)


def test_names_lose_control_characters() -> None:
    account = customer_account(
        contacts=[mypage("a@example.jp", name="山田\r\nBcc: evil@example.jp")],
        users=[user("u01", "u@example.jp", name="佐藤 花子")],
    )
    first, second = customer_candidates(account)
    assert (first.name, first.name_sanitized) == ("山田Bcc: evil@example.jp", True)
    assert (second.name, second.name_sanitized) == ("佐藤 花子", False)
    assert first.email == "a@example.jp"
