"""The plain-address fast path of `normalize_email` decides exactly as email-validator does.

The oracle is the normalization as it was before the fast path: NFKC, then email-validator on
every address. The fast path may decline any address (it then goes to email-validator); what it
must never do is accept an address email-validator rejects or spell one differently. So the
strategies aim at the edges of its regex: email-validator's special-use names, R-LDH and Punycode
labels, all-digit top-level domains, length limits, role mailboxes, and characters one step
outside the alphabets (quotes, brackets, Unicode look-alikes that NFKC or UTS-46 would map).
"""

from __future__ import annotations

import unicodedata

import email_validator
import pytest
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from hypothesis import example, given, settings
from hypothesis import strategies as st

from resolver.model import Normalized

# The fast path itself is private; it is what these tests are about.
from resolver.normalize import _PLAIN_ADDRESS, _plain_address, normalize_email

ATEXT = "abcxyzABCXYZ0189!#$%&'*+-/=?^_`{|}~"
# One step outside atext: specials, quotes, escapes, space, and Unicode that NFKC or UTS-46
# would turn into ASCII (full-width letters and @, Kelvin sign, dotless i, long s, ideographic
# full stop) or that email-validator rejects outright (controls, combining marks, separators).
RISKY = (
    '."(),:;<>@[\\] \t\n\x00\x7féß\u0301\u212a\u0131\u017f\uff41\uff20\uff0e\u3002\u3000\u2028例'
)
LDH = "abcxyzABCXYZ0189-"
SPECIAL_LABELS = (
    *email_validator.SPECIAL_USE_DOMAIN_NAMES,
    "LOCALHOST",
    "Test",
    "Onion",
    "example",
    "xn--r8jz45g",
    "xn--p1ai",
    "XN--P1AI",
    "xn--abc",
    "xn--",
    "ab--cd",
    "a--b",
    "-a",
    "a-",
    "123",
    "1a",
    "com1",
    "c0m",
    "c",
    "jp",
    "co",
    "com",
    "_a",
)


def oracle_address(text: str) -> str | None:
    """email-validator's verdict as normalize_email applied it before the fast path."""
    try:
        valid = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return f"{valid.local_part}@{valid.ascii_domain.lower()}"


def oracle_normalize(raw: str) -> Normalized:
    """normalize_email as it was before the fast path, verbatim."""
    trimmed = raw.strip()
    if not trimmed:
        return Normalized(original=raw, address=None, key=None, missing=True)
    folded = unicodedata.normalize("NFKC", trimmed).strip()
    changed = folded != trimmed
    try:
        valid = validate_email(folded, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return Normalized(original=raw, address=None, key=None, error=str(exc), changed=changed)
    address = f"{valid.local_part}@{valid.ascii_domain.lower()}"
    return Normalized(original=raw, address=address, key=address.lower(), changed=changed)


def assert_agrees(text: str) -> str | None:
    fast = _plain_address(text)
    if fast is not None:
        assert fast == oracle_address(text), text
    return fast


# --- strategies ---------------------------------------------------------------------------------

dot_atoms = st.lists(st.text(ATEXT, min_size=1, max_size=12), min_size=1, max_size=4).map(".".join)
locals_ = st.one_of(
    dot_atoms,
    st.text(ATEXT + RISKY, max_size=20),
    st.sampled_from(CASE_INSENSITIVE_MAILBOX_NAMES).map(str.upper),
    st.sampled_from(CASE_INSENSITIVE_MAILBOX_NAMES).map(str.title),
    st.integers(60, 70).map(lambda n: "a" * n),
)
labels = st.one_of(
    st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", fullmatch=True),
    st.text(LDH, min_size=0, max_size=8),
    st.text(LDH + RISKY, min_size=1, max_size=8),
    st.sampled_from(SPECIAL_LABELS),
    # Hyphen pairs: R-LDH ("ab--c", rejected) and Punycode ("xn--", decoded) labels.
    st.from_regex(r"(?:xn|XN|[a-z0-9]{1,3})--[a-z0-9-]{0,6}[a-z0-9]", fullmatch=True),
    st.integers(60, 66).map(lambda n: "b" * n),
)
# Mostly under a top-level domain the fast path takes, so that the labels before it decide.
tlds = st.one_of(st.sampled_from(["jp", "JP", "com", "Com", "museum"]), labels)
domains = st.builds(lambda head, tld: ".".join([*head, tld]), st.lists(labels, max_size=4), tlds)
joiners = st.sampled_from(["@", "@", "@", "@@", "＠", " @", "@."])
addresses = st.one_of(
    st.builds(lambda local, at, domain: f"{local}{at}{domain}", locals_, joiners, domains),
    st.builds(lambda local, domain: f"{local}@{domain}", dot_atoms, domains),
    # Everything the fast path's own regex matches, whatever the post-checks make of it.
    st.from_regex(_PLAIN_ADDRESS, fullmatch=True),
    st.text(ATEXT + LDH + RISKY, max_size=30),
)


@st.composite
def near_the_length_limit(draw: st.DrawFn) -> str:
    """Addresses of 250-258 characters: labels near 63, local parts near 64."""
    local = "l" * draw(st.integers(1, 70))
    tld = draw(st.sampled_from(["jp", "com", "museum"]))
    total = draw(st.integers(250, 258))
    room = total - len(local) - 1 - len(tld)
    label_length = draw(st.integers(58, 64))
    parts: list[str] = []
    while room > label_length + 1:
        parts.append("d" * label_length)
        room -= label_length + 1
    if room > 1:
        parts.append("e" * (room - 1))
    return f"{local}@{'.'.join([*parts, tld])}"


# Clean, plainly valid addresses: the fast path must take every one of them.
plain_addresses = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.from_regex(r"[A-Za-z0-9_+]{1,10}(?:\.[A-Za-z0-9_+]{1,10}){0,2}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9]{1,12}(?:\.[A-Za-z0-9]{1,12}){0,2}", fullmatch=True),
    st.sampled_from(["jp", "JP", "com", "net", "org", "co.jp", "ne.jp", "museum"]),
)

_FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


@st.composite
def raw_cells(draw: st.DrawFn) -> str:
    """A source cell: an address, maybe full-width, maybe padded, or any text at all."""
    text = draw(st.one_of(addresses, plain_addresses, near_the_length_limit(), st.text()))
    if draw(st.booleans()):
        text = text.translate(_FULL_WIDTH)
    pad = st.sampled_from(["", " ", "\u3000", "\t", "\n", "\x1c"])
    return draw(pad) + text + draw(pad)


# --- properties ---------------------------------------------------------------------------------


@given(st.one_of(addresses, near_the_length_limit()))
@settings(max_examples=1000)
@example("Info@Example.JP")
@example("a@localhost.localhost")
def test_fast_path_accepts_only_what_email_validator_accepts_and_spells_it_alike(
    text: str,
) -> None:
    assert_agrees(text)


@given(plain_addresses)
@settings(max_examples=300)
def test_fast_path_takes_every_plainly_valid_address(text: str) -> None:
    fast = assert_agrees(text)
    assert fast is not None
    local, _, domain = text.partition("@")
    assert fast == f"{local}@{domain.lower()}" or local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES


@given(raw_cells())
@settings(max_examples=500)
def test_normalize_email_decides_as_before_the_fast_path(raw: str) -> None:
    assert normalize_email(raw) == oracle_normalize(raw)


# --- hand-picked edges --------------------------------------------------------------------------


def _of_length(total: int, local: int = 64) -> str:
    domain_length = total - local - 1
    labels = []
    while domain_length > 63 + 1 + 2:
        labels.append("d" * 63)
        domain_length -= 64
    labels.append("e" * (domain_length - 3))
    return "l" * local + "@" + ".".join([*labels, "jp"])


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        ("taro@example.jp", "taro@example.jp"),
        ("Same.Person@Example.CO.JP", "Same.Person@example.co.jp"),
        ("a+tag@mail.example.ne.jp", "a+tag@mail.example.ne.jp"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("{x}|~`^=?/#$%&*@example.jp", "{x}|~`^=?/#$%&*@example.jp"),
        ("a@123.example.com", "a@123.example.com"),
        ("a@test.com", "a@test.com"),  # special-use only as the last labels
        ("a@localhost.com", "a@localhost.com"),
        ("a@a-b.jp", "a@a-b.jp"),
        (_of_length(254), _of_length(254)),
        ("a@" + "b" * 63 + ".jp", "a@" + "b" * 63 + ".jp"),
        # declined: email-validator decides (valid or not)
        ("a@b.c", None),  # one-letter TLD
        ("a@example.c0m", None),  # TLD with a digit
        ("a@example.123", None),  # all-digit TLD
        ("a@example", None),  # single label
        ("a@localhost", None),
        ("a@LOCALHOST", None),
        ("a@example.test", None),
        ("a@Example.TEST", None),
        ("a@host.invalid", None),
        ("a@printer.local", None),
        ("a@hidden.onion", None),
        ("a@1.0.168.192.in-addr.arpa", None),
        ("a@xn--r8jz45g.jp", None),  # Punycode: needs an IDNA decode
        ("a@example.xn--p1ai", None),
        ("a@ab--cd.jp", None),  # R-LDH label
        ("a@a--b.jp", None),
        ("a@-a.jp", None),
        ("a@a-.jp", None),
        ("a@a_b.jp", None),
        ("a..b@example.jp", None),
        (".a@example.jp", None),
        ("a.@example.jp", None),
        ("a@example..jp", None),
        ("a@.example.jp", None),
        ("a@example.jp.", None),
        ("a@@example.jp", None),
        ('"a"@example.jp', None),
        ('"a b"@example.jp', None),
        ("a b@example.jp", None),
        ("a@[127.0.0.1]", None),
        ("Taro <a@example.jp>", None),
        ("a@example.jp\n", None),
        ("\na@example.jp", None),
        ("a@example.jp\x00", None),
        ("é@example.jp", None),
        ("a@例え.jp", None),
        ("a@\u212aelvin.jp", None),  # Kelvin sign: UTS-46 maps it to k
        ("a" * 65 + "@example.jp", None),  # over 64 before the @ (valid unless strict)
        (_of_length(255, local=60), None),
        ("a@" + "b" * 64 + ".jp", None),
    ],
)
def test_hand_picked_edges(text: str, fast: str | None) -> None:
    assert assert_agrees(text) == fast
    # A declined address still normalizes as before.
    assert normalize_email(text) == oracle_normalize(text)


@pytest.mark.parametrize("name", CASE_INSENSITIVE_MAILBOX_NAMES)
def test_role_mailboxes_are_lower_cased_like_email_validator_does(name: str) -> None:
    text = f"{name.upper()}@Example.JP"
    assert assert_agrees(text) == f"{name}@example.jp"
    assert normalize_email(f"{name.title()}.Desk@example.jp").address == (
        f"{name.title()}.Desk@example.jp"
    )


def test_oracle_knows_the_declined_edges() -> None:
    # The edges above exercise both verdicts of email-validator, not only rejections.
    assert oracle_address("a@b.c") == "a@b.c"
    assert oracle_address("a@a--b.jp") == "a@a--b.jp"
    assert oracle_address("a" * 65 + "@example.jp") is not None
    assert oracle_address("a@example.test") is None
    assert oracle_address(_of_length(255, local=60)) is None
    assert len(_of_length(254)) == 254 and len(_of_length(255, local=60)) == 255


def test_a_changed_special_use_list_is_honoured_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast path remembers its verdict per domain; email-validator documents its special-use
    # list as settable, so replacing it, or changing it in place, must reach the next address.
    assert normalize_email("taro@Intra.Example.JP").address == "taro@intra.example.jp"
    monkeypatch.setattr(
        email_validator,
        "SPECIAL_USE_DOMAIN_NAMES",
        [*email_validator.SPECIAL_USE_DOMAIN_NAMES, "example.jp"],
    )
    assert normalize_email("taro@Intra.Example.JP") == oracle_normalize("taro@Intra.Example.JP")
    assert normalize_email("taro@Intra.Example.JP").address is None
    email_validator.SPECIAL_USE_DOMAIN_NAMES.remove("example.jp")  # in place, same length
    email_validator.SPECIAL_USE_DOMAIN_NAMES.append("example.com")
    assert normalize_email("taro@Intra.Example.JP").address == "taro@intra.example.jp"
    assert normalize_email("hanako@example.com").address is None
