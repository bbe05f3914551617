"""Hypothesis properties of the resolver (STYLE "Tests"): normalization, dedupe, reason order."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.model import (
    AccountType,
    CampaignPolicy,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    CustomerAccount,
    Decision,
    DedupeMode,
    MyPageRole,
    PartnerAccount,
    PartnerStatus,
    Reason,
    UserStatus,
)
from resolver.normalize import dedupe_key, normalize_email
from resolver.resolve import Resolution, resolve_all
from resolver.rules import SKIP_RULES
from tests.resolver.builders import (
    AS_OF,
    customer_account,
    mypage,
    partner_account,
    partner_contact,
    user,
)

SKIP_ORDER = [code for code, _ in SKIP_RULES]

_FULL_WIDTH = str.maketrans(
    {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}  # ASCII -> full-width forms
)

# A small pool, so that generated accounts share addresses in every spelling.
ADDRESSES = st.sampled_from(
    [
        "a@example.jp",
        "A@Example.JP",
        "ａ＠ｅｘａｍｐｌｅ．ｊｐ",
        " a@example.jp\u3000",
        "b@example.co.jp",
        "c@mail.example.ne.jp",
        "",
        "bad@@example.jp",
    ]
)


@st.composite
def email_like(draw: st.DrawFn) -> str:
    local = draw(st.from_regex(r"[A-Za-z0-9+_-]{1,8}(\.[A-Za-z0-9+_-]{1,8}){0,2}", fullmatch=True))
    domain = draw(st.sampled_from(["example.jp", "Example.CO.JP", "mail.example.ne.jp", "例え.jp"]))
    text = f"{local}@{domain}"
    if draw(st.booleans()):
        text = text.translate(_FULL_WIDTH)
    return (
        draw(st.sampled_from(["", " ", "\u3000", "\t"])) + text + draw(st.sampled_from(["", " "]))
    )


@given(st.one_of(st.text(), email_like()))
@settings(max_examples=300)
def test_normalization_never_raises_and_is_idempotent(raw: str) -> None:
    n = normalize_email(raw)
    assert (n.address is None) == (n.key is None)
    assert n.missing == (raw.strip() == "")
    if n.address is not None:
        again = normalize_email(n.address)
        assert (again.address, again.key, again.changed) == (n.address, n.key, False)
        assert n.key == n.address.lower()
        assert n.address.isascii()
        assert dedupe_key(raw) == n.key
    else:
        assert n.missing or n.error


@given(email_like())
def test_email_like_addresses_are_valid(raw: str) -> None:
    assert normalize_email(raw).address is not None


@st.composite
def customers(draw: st.DrawFn) -> list[CustomerAccount]:
    corp_ids = draw(st.lists(st.sampled_from([f"C{i:02}" for i in range(8)]), unique=True))
    accounts = []
    for corp_id in corp_ids:
        roles = draw(st.lists(st.sampled_from(list(MyPageRole)), unique=True))
        user_ids = draw(
            st.lists(st.sampled_from(["admin", "Admin", "u1", "u2", "u10"]), unique=True)
        )
        accounts.append(
            customer_account(
                corp_id,
                channel=draw(st.sampled_from(list(Channel))),
                status=draw(st.sampled_from(list(ContractStatus))),
                contacts=[mypage(draw(ADDRESSES), role) for role in roles],
                users=[
                    user(
                        user_id,
                        draw(ADDRESSES),
                        admin=draw(st.booleans()),
                        account_type=draw(st.sampled_from(list(AccountType))),
                        status=draw(st.sampled_from(list(UserStatus))),
                    )
                    for user_id in user_ids
                ],
            )
        )
    return accounts


@st.composite
def partners(draw: st.DrawFn) -> list[PartnerAccount]:
    partner_ids = draw(st.lists(st.sampled_from(["P1", "P2", "P3"]), unique=True))
    contact_ids = iter(range(100))
    return [
        partner_account(
            partner_id,
            status=draw(st.sampled_from(list(PartnerStatus))),
            contacts=[
                partner_contact(
                    f"K{next(contact_ids):02}",
                    draw(ADDRESSES),
                    role=draw(st.sampled_from(list(ContactRole))),
                    status=draw(st.sampled_from(list(ContactStatus))),
                    certified_until=draw(
                        st.one_of(st.none(), st.sampled_from([-1, 0, 1]).map(_days))
                    ),
                )
                for _ in range(draw(st.integers(0, 3)))
            ],
        )
        for partner_id in partner_ids
    ]


def _days(n: int) -> date:
    return AS_OF + timedelta(days=n)


def _resolve(
    cs: list[CustomerAccount], ps: list[PartnerAccount], mode: DedupeMode, suppress_b: bool
) -> Resolution:
    suppressed = frozenset({"b@example.co.jp"}) if suppress_b else frozenset()
    return resolve_all(cs, ps, CampaignPolicy(dedupe=mode), AS_OF, suppressed)


DATA = {
    "cs": customers(),
    "ps": partners(),
    "mode": st.sampled_from(list(DedupeMode)),
    "suppress_b": st.booleans(),
}


@given(**DATA)
@settings(max_examples=150)
def test_exactly_one_send_per_group_and_merged_rows_share_its_address(
    cs: list[CustomerAccount], ps: list[PartnerAccount], mode: DedupeMode, suppress_b: bool
) -> None:
    resolution = _resolve(cs, ps, mode, suppress_b)
    sends = Counter(r.delivery_key for r in resolution.rows if r.decision is Decision.SEND)
    groups = {r.delivery_key for r in resolution.rows if r.decision is not Decision.SKIP}
    assert set(sends) == groups and set(sends.values()) <= {1}
    send_email = {
        r.delivery_key: r.delivery_email for r in resolution.rows if r.decision is Decision.SEND
    }
    for r in resolution.rows:
        if r.decision is Decision.MERGED:
            assert r.delivery_email == send_email[r.delivery_key]
        if r.decision is Decision.SKIP:
            assert r.delivery_key is None and r.delivery_email is None
    assert [d.key for d in resolution.deliveries] == list(send_email)
    assert [d.seq for d in resolution.deliveries] == list(range(1, len(send_email) + 1))
    if suppress_b:
        assert "b@example.co.jp" not in {k.split("|")[0] for k in groups if k}


@given(**DATA)
@settings(max_examples=150)
def test_reasons_follow_spec_order(
    cs: list[CustomerAccount], ps: list[PartnerAccount], mode: DedupeMode, suppress_b: bool
) -> None:
    for r in _resolve(cs, ps, mode, suppress_b).rows:
        if r.decision is Decision.SKIP:
            positions = [SKIP_ORDER.index(code) for code in r.reasons]
            assert positions == sorted(set(positions)) and positions
            assert r.skip_reasons == r.reasons
        else:
            assert r.skip_reasons == ()
            assert r.reasons[0] not in SKIP_ORDER
            expected_tail = (Reason.DUPLICATE_ADDRESS,) if r.decision is Decision.MERGED else ()
            assert r.reasons[1:] == expected_tail


@given(**DATA, seed=st.randoms(use_true_random=False))
@settings(max_examples=100)
def test_result_does_not_depend_on_input_order(
    cs: list[CustomerAccount],
    ps: list[PartnerAccount],
    mode: DedupeMode,
    suppress_b: bool,
    seed: object,
) -> None:
    shuffled_cs, shuffled_ps = list(cs), list(ps)
    seed.shuffle(shuffled_cs)  # type: ignore[attr-defined]
    seed.shuffle(shuffled_ps)  # type: ignore[attr-defined]
    assert _resolve(shuffled_cs, shuffled_ps, mode, suppress_b) == _resolve(
        cs, ps, mode, suppress_b
    )
