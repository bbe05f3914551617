"""The streaming `Resolver`: feeding order guards and per-account outcomes."""

from __future__ import annotations

import pytest

from resolver.model import (
    AccountKind,
    Audience,
    CampaignPolicy,
    Decision,
    ExclusionFilter,
    Source,
)
from resolver.resolve import Resolver
from tests.resolver.builders import (
    AS_OF,
    customer_account,
    mypage,
    partner_account,
    partner_contact,
    resolve,
    user,
)


def _resolver() -> Resolver:
    return Resolver(CampaignPolicy(), AS_OF, frozenset())


@pytest.mark.parametrize("second", ["C001", "C0005", "B999"])
def test_customers_must_come_in_ascending_corp_id(second: str) -> None:
    resolver = _resolver()
    resolver.feed_customer(customer_account("C001"))
    with pytest.raises(ValueError, match="ascending corp_id"):
        resolver.feed_customer(customer_account(second))


def test_customers_after_partners_are_refused() -> None:
    resolver = _resolver()
    resolver.feed_partners([])
    with pytest.raises(ValueError, match="after the partners"):
        resolver.feed_customer(customer_account("C001"))
    with pytest.raises(ValueError, match="once"):
        resolver.feed_partners([])


def test_duplicate_partner_is_refused() -> None:
    with pytest.raises(ValueError, match="P001 fed twice"):
        _resolver().feed_partners([partner_account("P001"), partner_account("P001")])


def test_customer_outcome_holds_rows_exclusions_and_non_candidates() -> None:
    resolver = Resolver(
        CampaignPolicy(audiences=frozenset({Audience.CUSTOMER})), AS_OF, frozenset()
    )
    outcome = resolver.feed_customer(
        customer_account(
            contacts=[mypage("boss@example.jp")],
            users=[user("u01", "boss@example.jp"), user("staff", "s@example.jp", admin=False)],
        )
    )
    assert (outcome.account_id, outcome.kind) == ("C001", AccountKind.CUSTOMER)
    assert [(r.candidate.source, r.decision) for r in outcome.rows] == [
        (Source.MYPAGE_CONTRACT_MANAGER, Decision.SEND),
        (Source.SYSTEM_ADMIN, Decision.MERGED),
    ]
    assert [u.user_id for u in outcome.non_candidates] == ["staff"]
    assert outcome.warnings == ()

    (partner,) = resolver.feed_partners(
        [partner_account("P001", contacts=[partner_contact("K1", "k@example.jp")])]
    )
    assert (partner.account_id, partner.kind, partner.rows) == ("P001", AccountKind.PARTNER, ())
    assert [e.filter for e in partner.excluded] == [ExclusionFilter.AUDIENCES]

    (delivery,) = resolver.finish()
    assert delivery.email == "boss@example.jp"
    with pytest.raises(ValueError):
        resolver.feed_customer(customer_account("C999"))


def test_partner_outcomes_come_in_partner_id_order_with_every_partner() -> None:
    outcomes = _resolver().feed_partners(
        [
            partner_account("P002", contacts=[partner_contact("K2", "k2@example.jp")]),
            partner_account("P001"),
        ]
    )
    assert [(o.account_id, len(o.rows)) for o in outcomes] == [("P001", 0), ("P002", 1)]


def test_resolve_all_sorts_customers_itself() -> None:
    customers = [customer_account(c, contacts=[mypage("same@example.jp")]) for c in ("C2", "C1")]
    resolution = resolve(customers)
    assert [(r.candidate.account_id, r.decision) for r in resolution.rows] == [
        ("C1", Decision.SEND),
        ("C2", Decision.MERGED),
    ]
