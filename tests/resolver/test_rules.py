"""SPEC §4 skip rules: each code alone, the combinations of the spec's data, and their order."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from resolver.model import (
    AccountType,
    CampaignPolicy,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    Decision,
    DedupeMode,
    MyPageRole,
    PartnerStatus,
    Reason,
    Source,
    UserStatus,
    WarningCode,
)
from resolver.rules import EXPLANATIONS, INCLUDE_CODE, SKIP_RULES
from tests.resolver.builders import (
    AS_OF,
    customer_account,
    mypage,
    partner_account,
    partner_contact,
    resolve,
    row,
    user,
)

R = Reason


def _user_reasons(
    *,
    channel: Channel = Channel.DIRECT,
    status: ContractStatus = ContractStatus.ACTIVE,
    account_type: AccountType = AccountType.NORMAL,
    user_status: UserStatus = UserStatus.ACTIVE,
    email: str = "sato@example.jp",
) -> tuple[Reason, ...]:
    """Reasons of system administrator u01 of customer C001 with the given facts."""
    account = customer_account(
        channel=channel,
        status=status,
        users=[user("u01", email, account_type=account_type, status=user_status)],
    )
    decided = row(resolve([account]), Source.SYSTEM_ADMIN, "C001", "u01")
    assert decided.skip_reasons == (decided.reasons if decided.decision is Decision.SKIP else ())
    return decided.reasons


def _contact_reasons(
    *,
    partner_status: PartnerStatus = PartnerStatus.ACTIVE,
    status: ContactStatus = ContactStatus.ACTIVE,
    role: ContactRole = ContactRole.CONTACT,
    certified_until: date | None = None,
    email: str = "k1@example.jp",
) -> tuple[Reason, ...]:
    """Reasons of the only contact K1 of partner P001 with the given facts."""
    contact = partner_contact(
        "K1", email, role=role, certified_until=certified_until, status=status
    )
    resolution = resolve(partners=[partner_account(contacts=[contact], status=partner_status)])
    (only,) = resolution.rows
    return only.reasons


def test_skip_rules_are_named_after_their_codes_in_spec_order() -> None:
    assert [code for code, _ in SKIP_RULES] == [
        R.RESELLER_CHANNEL,
        R.CONTRACT_ENDED,
        R.GROUP_ACCOUNT,
        R.USER_NOT_ACTIVE,
        R.PARTNER_NOT_ACTIVE,
        R.CONTACT_NOT_ACTIVE,
        R.CERTIFICATION_EXPIRED,
        R.MISSING_EMAIL,
        R.INVALID_EMAIL,
        R.SUPPRESSED,
        R.ALREADY_SENT,
    ]
    for code, rule in SKIP_RULES:
        assert rule.__name__ == code.lower()
        assert rule.__doc__ and "\n" not in rule.__doc__.strip()


def test_every_source_has_an_include_code_and_every_code_an_explanation() -> None:
    assert set(INCLUDE_CODE) == set(Source)
    assert set(EXPLANATIONS) == set(Reason)
    assert "reseller" in EXPLANATIONS[R.RESELLER_CHANNEL]


def test_direct_active_administrator_is_included() -> None:
    assert _user_reasons() == (R.SYSTEM_ADMIN,)


def test_reseller_channel() -> None:
    assert _user_reasons(channel=Channel.RESELLER) == (R.RESELLER_CHANNEL,)


def test_contract_ended() -> None:
    account = customer_account(status=ContractStatus.TERMINATED, contacts=[mypage("a@example.jp")])
    decided = row(resolve([account]), Source.MYPAGE_CONTRACT_MANAGER, "C001")
    assert (decided.decision, decided.reasons) == (Decision.SKIP, (R.CONTRACT_ENDED,))
    assert decided.skip_reasons == (R.CONTRACT_ENDED,)
    assert decided.delivery_email is None and decided.delivery_key is None


def test_suspended_contract_still_receives() -> None:
    account = customer_account(status=ContractStatus.SUSPENDED, contacts=[mypage("a@example.jp")])
    decided = row(resolve([account]), Source.MYPAGE_CONTRACT_MANAGER, "C001")
    assert (decided.decision, decided.reasons) == (Decision.SEND, (R.MYPAGE_CONTACT,))


def test_group_account_even_with_the_permission() -> None:
    assert _user_reasons(account_type=AccountType.GROUP) == (R.GROUP_ACCOUNT,)


def test_group_account_admin_is_skipped() -> None:
    account = customer_account(
        users=[user("admin", "admin@example.jp", admin=False, account_type=AccountType.GROUP)]
    )
    decided = row(resolve([account]), Source.LEGACY_ADMIN, "C001", "admin")
    assert decided.reasons == (R.GROUP_ACCOUNT,)


@pytest.mark.parametrize("status", [UserStatus.LOCKED, UserStatus.DELETED])
def test_user_not_active(status: UserStatus) -> None:
    assert _user_reasons(user_status=status) == (R.USER_NOT_ACTIVE,)


def test_partner_not_active() -> None:
    assert _contact_reasons(partner_status=PartnerStatus.TERMINATED) == (R.PARTNER_NOT_ACTIVE,)


def test_contact_not_active() -> None:
    assert _contact_reasons(status=ContactStatus.INACTIVE) == (R.CONTACT_NOT_ACTIVE,)


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        (AS_OF, (R.CERTIFIED_IMPLEMENTER,)),  # the day itself is valid
        (AS_OF + timedelta(days=1), (R.CERTIFIED_IMPLEMENTER,)),
        (AS_OF - timedelta(days=1), (R.CERTIFICATION_EXPIRED,)),
        (None, (R.CERTIFICATION_EXPIRED,)),
    ],
)
def test_certification_expired(until: date | None, expected: tuple[Reason, ...]) -> None:
    reasons = _contact_reasons(role=ContactRole.CERTIFIED_IMPLEMENTER, certified_until=until)
    assert reasons == expected


@pytest.mark.parametrize("until", [None, AS_OF - timedelta(days=400)])
def test_certified_until_means_nothing_for_a_contact(until: date | None) -> None:
    assert _contact_reasons(role=ContactRole.CONTACT, certified_until=until) == (R.PARTNER_CONTACT,)


def test_missing_email_is_not_also_invalid() -> None:
    assert _user_reasons(email=" \u3000") == (R.MISSING_EMAIL,)


def test_invalid_email() -> None:
    assert _user_reasons(email="taro@@example.co.jp") == (R.INVALID_EMAIL,)


def test_suppressed_matches_by_dedupe_key() -> None:
    account = customer_account(contacts=[mypage("ＴＡＲＯ＠Example.jp")])
    resolution = resolve([account], suppressed=frozenset({"taro@example.jp"}))
    decided = row(resolution, Source.MYPAGE_CONTRACT_MANAGER, "C001")
    assert (decided.decision, decided.reasons) == (Decision.SKIP, (R.SUPPRESSED,))
    assert resolution.deliveries == ()


def test_already_sent_is_last_and_matches_the_delivery_key() -> None:
    # §4: ALREADY_SENT comes after SUPPRESSED; the key is the dedupe key (case, NFKC folded)
    account = customer_account(
        contacts=[mypage("ＴＡＲＯ＠Example.jp"), mypage("hanako@example.jp", MyPageRole.BILLING)]
    )
    resolution = resolve(
        [account],
        suppressed=frozenset({"taro@example.jp"}),
        already_sent=frozenset({"taro@example.jp"}),
    )
    decided = row(resolution, Source.MYPAGE_CONTRACT_MANAGER, "C001")
    assert decided.reasons == (R.SUPPRESSED, R.ALREADY_SENT)
    billing = row(resolution, Source.MYPAGE_BILLING, "C001")
    assert (billing.decision, billing.reasons) == (Decision.SEND, (R.MYPAGE_CONTACT,))


def test_already_sent_uses_per_account_keys_under_address_per_account() -> None:
    accounts = [
        customer_account("C001", contacts=[mypage("tax@example.jp")]),
        customer_account("C002", contacts=[mypage("tax@example.jp")]),
    ]
    policy = CampaignPolicy(dedupe=DedupeMode.ADDRESS_PER_ACCOUNT)
    resolution = resolve(accounts, policy=policy, already_sent=frozenset({"tax@example.jp|C001"}))
    assert row(resolution, Source.MYPAGE_CONTRACT_MANAGER, "C001").reasons == (R.ALREADY_SENT,)
    assert row(resolution, Source.MYPAGE_CONTRACT_MANAGER, "C002").decision is Decision.SEND
    assert [d.key for d in resolution.deliveries] == ["tax@example.jp|C002"]


def test_a_customer_reached_by_an_earlier_run_is_not_unreachable() -> None:
    account = customer_account(contacts=[mypage("taro@example.jp")])
    reached = resolve([account], already_sent=frozenset({"taro@example.jp"}))
    assert not [w for w in reached.warnings if w.code is WarningCode.UNREACHABLE_CUSTOMER]
    gone = resolve([account], suppressed=frozenset({"taro@example.jp"}))
    assert [w.code for w in gone.warnings] == [WarningCode.UNREACHABLE_CUSTOMER]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (
            {"channel": Channel.RESELLER, "status": ContractStatus.TERMINATED},
            (R.RESELLER_CHANNEL, R.CONTRACT_ENDED),
        ),
        (
            {
                "channel": Channel.RESELLER,
                "status": ContractStatus.TERMINATED,
                "user_status": UserStatus.DELETED,
            },
            (R.RESELLER_CHANNEL, R.CONTRACT_ENDED, R.USER_NOT_ACTIVE),
        ),
        (
            {"channel": Channel.RESELLER, "account_type": AccountType.GROUP},
            (R.RESELLER_CHANNEL, R.GROUP_ACCOUNT),
        ),
        (
            {"channel": Channel.RESELLER, "user_status": UserStatus.LOCKED},
            (R.RESELLER_CHANNEL, R.USER_NOT_ACTIVE),
        ),
        (
            {
                "status": ContractStatus.TERMINATED,
                "account_type": AccountType.GROUP,
                "user_status": UserStatus.DELETED,
                "email": "",
            },
            (R.CONTRACT_ENDED, R.GROUP_ACCOUNT, R.USER_NOT_ACTIVE, R.MISSING_EMAIL),
        ),
        (
            {"channel": Channel.RESELLER, "email": "taro@@example.co.jp"},
            (R.RESELLER_CHANNEL, R.INVALID_EMAIL),
        ),
    ],
)
def test_combinations_list_every_code_in_spec_order(
    facts: dict[str, Any], expected: tuple[Reason, ...]
) -> None:
    assert _user_reasons(**facts) == expected


def test_partner_combination_in_spec_order() -> None:
    reasons = _contact_reasons(
        partner_status=PartnerStatus.TERMINATED,
        status=ContactStatus.INACTIVE,
        role=ContactRole.CERTIFIED_IMPLEMENTER,
        certified_until=None,
        email="bad@@example.jp",
    )
    assert reasons == (
        R.PARTNER_NOT_ACTIVE,
        R.CONTACT_NOT_ACTIVE,
        R.CERTIFICATION_EXPIRED,
        R.INVALID_EMAIL,
    )
