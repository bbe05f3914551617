"""SPEC §4 "Normalization" and the control-character stripping shared with the MIME builder."""

from __future__ import annotations

import pytest

from resolver.normalize import dedupe_key, normalize_email, strip_controls


def test_full_width_address_becomes_ascii_and_is_marked_changed() -> None:
    n = normalize_email("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ")
    assert (n.address, n.key, n.changed, n.missing, n.error) == (
        "taro@example.jp",
        "taro@example.jp",
        True,
        False,
        None,
    )
    assert n.original == "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ"


def test_trimming_alone_is_not_a_change() -> None:
    # U+3000 (full-width space) is trimmed like an ASCII space.
    n = normalize_email("\u3000 taro@example.jp\t ")
    assert (n.address, n.changed) == ("taro@example.jp", False)


@pytest.mark.parametrize("raw", ["", "   ", "\u3000", "\t\r\n"])
def test_empty_after_trimming_is_missing_not_invalid(raw: str) -> None:
    n = normalize_email(raw)
    assert (n.missing, n.address, n.key, n.error) == (True, None, None, None)


@pytest.mark.parametrize("raw", ["taro@@example.co.jp", "taro", "taro@example", "山田@example.jp"])
def test_invalid_address_says_why(raw: str) -> None:
    n = normalize_email(raw)
    assert n.address is None and n.key is None and not n.missing
    assert n.error


def test_domain_is_lower_cased_and_key_is_case_insensitive() -> None:
    n = normalize_email("Same.Person@Example.CO.JP")
    assert n.address == "Same.Person@example.co.jp"
    assert n.key == "same.person@example.co.jp"
    assert not n.changed


def test_idn_domain_is_punycode() -> None:
    n = normalize_email("taro@例え.jp")
    assert n.address == "taro@xn--r8jz45g.jp"


@pytest.mark.parametrize(
    "raw",
    [
        "a@example.jp",
        "a@example.co.jp",
        "a@mail.example.ne.jp",
        "a@example.com",
        "a@kaikei.example.jp",
    ],
)
def test_example_domains_of_the_sample_data_are_accepted(raw: str) -> None:
    assert normalize_email(raw).address == raw


def test_strip_controls_removes_line_breaks_and_separators() -> None:
    assert strip_controls("山田\r\nBcc: x@example.jp") == ("山田Bcc: x@example.jp", True)
    assert strip_controls("山田\u2028太郎\u2029\x00\x7f\x85") == ("山田太郎", True)
    assert strip_controls("山田\t太郎") == ("山田太郎", True)


def test_strip_controls_keeps_ordinary_names() -> None:
    assert strip_controls("山田\u3000太郎") == ("山田\u3000太郎", False)
    assert strip_controls("Taro Yamada") == ("Taro Yamada", False)


def test_dedupe_key_matches_candidate_keys() -> None:
    assert dedupe_key(" ＴＡＲＯ＠Example.jp ") == "taro@example.jp"
    assert dedupe_key("") is None
    # Not a valid address: kept in one stable spelling, never equal to a valid key.
    assert dedupe_key(" Bad@@Example.jp ") == "bad@@example.jp"
