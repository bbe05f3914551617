"""jobs.messages.mime: the bytes parse back with the stdlib to what was rendered, both charsets."""

from __future__ import annotations

import base64
import email
import re
from datetime import datetime, timedelta, timezone
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jobs.config.settings import Charset
from jobs.errors import ConfigError
from jobs.messages.mime import BuiltMessage, build_message, message_id, sanitize_header
from jobs.messages.render import Rendered

JST = timezone(timedelta(hours=9))
WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=JST)
FROM = "SmileWorks事務局 <info@smileworks.example.jp>"
REPLY_TO = "support@smileworks.example.jp"
MID = "<0123456789abcdef0123456789abcdef@mailer.smileworks.example.jp>"
TEXT = "斎藤 誠 様\n\nメンテナンスのお知らせです。\n〜 ■ ・ ―\n"
HTML = "<p>斎藤 誠 様</p>\n<p>メンテナンスのお知らせです。</p>\n"
SUBJECT = "【SmileWorks】定期メンテナンス実施のお知らせ（2026年12月19日（土）22:00〜）"

# Header names of a two-part message, in order: nothing more may ever appear.
TOP_HEADERS = [
    "Date",
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Message-ID",
    "MIME-Version",
    "Auto-Submitted",
    "X-SmileWorks-Campaign",
    "Content-Type",
]


def build(
    *,
    subject: str = SUBJECT,
    text: str = TEXT,
    html: str | None = HTML,
    to_name: str = "斎藤 誠",
    to_addr: str = "makoto.saito@example.co.jp",
    charset: Charset = "utf-8",
    from_: str = FROM,
    reply_to: str = REPLY_TO,
    campaign_id: str = "maintenance-notice",
    mid: str = MID,
) -> BuiltMessage:
    return build_message(
        Rendered(subject=subject, text=text, html=html),
        to_name=to_name,
        to_addr=to_addr,
        from_=from_,
        reply_to=reply_to,
        message_id=mid,
        date=WHEN,
        charset=charset,
        campaign_id=campaign_id,
    )


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def assert_wire_format(data: bytes) -> None:
    """CRLF only, lines within 998 octets, the subject's encoded words within 75 characters."""
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert b"\n" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    subject = re.search(rb"\r\nSubject:(.*?)\r\n(?! )", data, re.DOTALL)
    assert subject is not None
    for word in re.findall(rb"=\?[^?]+\?[bB]\?[^?]*\?=", subject.group(1)):
        assert len(word) <= 75


# --- round trips ------------------------------------------------------------------------------


def test_utf8_two_part_message_parses_back() -> None:
    built = build()
    message = parse(built.data)

    assert (built.charset, built.fallback) == ("utf-8", False)
    assert list(message.keys()) == TOP_HEADERS
    assert message["Subject"] == SUBJECT
    to = message["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in to] == [
        ("斎藤 誠", "makoto.saito@example.co.jp")
    ]
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (
        "SmileWorks事務局",
        "info@smileworks.example.jp",
    )
    assert message["Reply-To"].addresses[0].addr_spec == REPLY_TO
    assert message["Message-ID"] == MID
    assert message["Date"].datetime == WHEN
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert body(message, "plain") == TEXT
    assert body(message, "html") == HTML
    for part in message.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "base64"
    assert not message.defects
    assert_wire_format(built.data)


def test_iso_2022_jp_is_seven_bit_and_parses_back() -> None:
    built = build(charset="iso-2022-jp")
    message = parse(built.data)

    assert (built.charset, built.fallback) == ("iso-2022-jp", False)
    assert all(byte < 0x80 for byte in built.data)
    assert b"\x1b$B" in built.data  # JIS X 0208 text, not base64
    assert message["Subject"] == SUBJECT
    assert message["To"].addresses[0].display_name == "斎藤 誠"
    assert message["From"].addresses[0].display_name == "SmileWorks事務局"
    assert b"=?ISO-2022-JP?B?" in built.data
    assert body(message, "plain") == TEXT
    assert body(message, "html") == HTML
    for part in message.iter_parts():
        assert part.get_content_charset() == "iso-2022-jp"
        assert part["Content-Transfer-Encoding"] == "7bit"
    assert_wire_format(built.data)


def test_text_only_message_is_a_single_part() -> None:
    message = parse(build(html=None).data)

    assert message.get_content_type() == "text/plain"
    assert not message.is_multipart()
    assert body(message, "plain") == TEXT
    assert list(message.keys()) == [*TOP_HEADERS, "Content-Transfer-Encoding"]


def test_last_line_break_of_each_part_survives() -> None:
    text = "一行目\n最終行\n"
    for charset in ("utf-8", "iso-2022-jp"):
        message = parse(build(text=text, html="<p>x</p>\n", charset=charset).data)  # type: ignore[arg-type]
        assert body(message, "plain") == text
        assert body(message, "html") == "<p>x</p>\n"


def test_overlong_iso_2022_jp_line_is_base64_in_the_same_charset() -> None:
    long_line = "あ" * 600 + "\n"  # 1200 octets of JIS X 0208, above the 998 limit of 7bit
    built = build(text=long_line, charset="iso-2022-jp")
    message = parse(built.data)

    part = message.get_body(("plain",))
    assert part is not None
    assert part["Content-Transfer-Encoding"] == "base64"
    assert part.get_content_charset() == "iso-2022-jp"
    assert body(message, "plain") == long_line
    assert_wire_format(built.data)


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
def test_long_subject_and_name_are_split_into_words_and_folded(charset: Charset) -> None:
    subject = "長い件名" * 80  # 320 characters: many encoded words, more than 998 octets
    name = "寿限無寿限無五劫の擦り切れ" * 5
    built = build(subject=subject, to_name=name, charset=charset)
    message = parse(built.data)

    assert message["Subject"] == subject
    assert message["To"].addresses[0].display_name == name
    assert b"\r\n =?" in built.data  # folded between words, past 998 octets only
    assert_wire_format(built.data)


def test_plain_ascii_values_stay_readable() -> None:
    built = build(
        subject="Maintenance notice", to_name="Taro Yamada", from_="Office <o@example.jp>"
    )

    assert b"\r\nSubject: Maintenance notice\r\n" in built.data
    assert b"\r\nTo: Taro Yamada <makoto.saito@example.co.jp>\r\n" in built.data
    assert b"\r\nFrom: Office <o@example.jp>\r\n" in built.data


@pytest.mark.parametrize(
    "name", ["Yamada, Taro", 'Taro "T" Yamada', "back\\slash", "a.b", "=?utf-8?q?x?="]
)
def test_ascii_names_with_specials_round_trip(name: str) -> None:
    message = parse(build(to_name=name).data)

    assert message["To"].addresses[0].display_name == name
    assert len(message["To"].addresses) == 1


def test_same_inputs_give_the_same_bytes() -> None:
    # a dry run's .eml equals what `run` sends (§8), boundary included
    assert build().data == build().data
    assert build(charset="iso-2022-jp").data == build(charset="iso-2022-jp").data


def test_empty_name_gives_a_bare_address_and_no_reply_to_is_omitted() -> None:
    message = parse(build(to_name="", reply_to="").data)

    assert message["To"].addresses[0].display_name == ""
    assert message["To"].addresses[0].addr_spec == "makoto.saito@example.co.jp"
    assert "Reply-To" not in message


# --- ISO-2022-JP fallback ------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["𠮷", "①", "😀", "髙", "～", "ｶ"])
@pytest.mark.parametrize("where", ["text", "subject", "to_name", "html"])
def test_text_outside_jis_falls_back_to_utf8(char: str, where: str) -> None:
    values = {"text": TEXT, "subject": SUBJECT, "to_name": "斎藤 誠", "html": HTML}
    values[where] = values[where] + char + ("\n" if where in ("text", "html") else "")
    built = build(charset="iso-2022-jp", **values)  # type: ignore[arg-type]
    message = parse(built.data)

    assert (built.charset, built.fallback) == ("utf-8", True)
    assert message["Subject"] == values["subject"]
    assert message["To"].addresses[0].display_name == values["to_name"]
    assert body(message, "plain") == values["text"]
    assert body(message, "html") == values["html"]
    assert b"ISO-2022-JP" not in built.data
    for part in message.iter_parts():
        assert part.get_content_charset() == "utf-8"


def test_utf8_never_reports_a_fallback() -> None:
    built = build(text="𠮷野家\n", charset="utf-8")

    assert (built.charset, built.fallback) == ("utf-8", False)


# --- header injection -------------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
@pytest.mark.parametrize(
    "field",
    ["to_name", "subject", "campaign_id", "to_name_ascii", "subject_ascii"],
)
def test_cr_lf_in_data_never_makes_a_header(field: str, charset: Charset) -> None:
    inject = "\r\nBcc: victim@example.com\r\n\r\nbody"
    values: dict[str, str] = {
        "to_name": "斎藤 誠" + inject,
        "subject": SUBJECT + inject,
        "campaign_id": "maintenance-notice" + inject,
        "to_name_ascii": "Taro" + inject,
        "subject_ascii": "Notice" + inject,
    }
    name = field.removesuffix("_ascii")
    built = build(charset=charset, **{name: values[field]})  # type: ignore[arg-type]
    message = parse(built.data)

    assert "Bcc" not in message
    assert list(message.keys()) == TOP_HEADERS
    assert b"\nBcc:" not in built.data
    assert not re.search(rb"\r\n\r\nbody", built.data)
    assert len(message["To"].addresses) == 1
    cleaned = values[field].replace("\r", "").replace("\n", "")
    read_back = {
        "to_name": lambda: message["To"].addresses[0].display_name,
        "subject": lambda: message["Subject"],
        "campaign_id": lambda: message["X-SmileWorks-Campaign"],
    }[name]()
    assert read_back == cleaned  # the value arrives, minus its line breaks


def test_sanitize_header_strips_controls_and_line_separators() -> None:
    assert sanitize_header("a\r\nb\tc\x00d\u2028e\x85f") == ("abcdef", True)
    assert sanitize_header("斎藤 誠") == ("斎藤 誠", False)


@pytest.mark.parametrize(
    "address", ["a@b.jp>, evil@example.com", "a b@example.jp", "日本@example.jp"]
)
def test_address_that_is_not_plain_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="not a plain ASCII address"):
        build(to_addr=address)


@pytest.mark.parametrize("mid", ["no-brackets@x.jp", "<a b@x.jp>", "<日本@x.jp>"])
def test_message_id_that_is_not_plain_is_refused(mid: str) -> None:
    with pytest.raises(ValueError, match="is not like <id@domain>"):
        build(mid=mid)


@pytest.mark.parametrize(
    "from_",
    [
        "SmileWorks事務局",
        "a@example.jp, b@example.jp",
        "SmileWorks事務局\r\nBcc: victim@example.com\r\n <info@smileworks.example.jp>",
    ],
)
def test_from_setting_that_is_not_one_address_is_a_config_error(from_: str) -> None:
    with pytest.raises(ConfigError, match=r"message\.from .* is not one address"):
        build(from_=from_)


def test_line_break_in_from_display_name_is_removed() -> None:
    message = parse(build(from_="SmileWorks\r\n事務局 <info@smileworks.example.jp>").data)

    assert str(message["From"]) == "SmileWorks事務局 <info@smileworks.example.jp>"
    assert list(message.keys()) == TOP_HEADERS


def test_naive_date_is_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        build_message(
            Rendered(SUBJECT, TEXT, None),
            to_name="",
            to_addr="a@example.jp",
            from_=FROM,
            reply_to="",
            message_id=MID,
            date=datetime(2026, 12, 1),
            charset="utf-8",
            campaign_id="c",
        )


# --- Message-ID ---------------------------------------------------------------------------------


def test_message_id_is_deterministic_and_hides_the_address() -> None:
    args = ("maintenance-notice", "2026-12-01", "taro@example.jp", "mail.example.jp")
    first = message_id(*args)

    assert first == message_id(*args)
    assert re.fullmatch(r"<[0-9a-f]{32}@mail\.example\.jp>", first)
    assert "taro" not in first
    others = {
        message_id("maintenance-notice", "2026-12-01", "hanako@example.jp", "mail.example.jp"),
        message_id("maintenance-notice", "2026-12-02", "taro@example.jp", "mail.example.jp"),
        message_id("other-campaign", "2026-12-01", "taro@example.jp", "mail.example.jp"),
        message_id("maintenance-notice", "2026-12-01", "taro@example.jp|C1", "mail.example.jp"),
    }
    assert first not in others and len(others) == 4


def test_message_id_fields_cannot_collide_by_shifting_text() -> None:
    assert message_id("a", "bc", "d", "x.jp") != message_id("ab", "c", "d", "x.jp")


@pytest.mark.parametrize("domain", ["", "bad domain", "例え.jp", "a>b"])
def test_message_id_domain_must_be_plain(domain: str) -> None:
    with pytest.raises(ConfigError, match="message_id_domain"):
        message_id("c", "k", "d", domain)


# --- properties -------------------------------------------------------------------------------


def stdlib_reads_exactly(name: str) -> bool:
    """policy.default folds an ASCII space with its whitespace neighbours in a display name.

    The bytes carry such names exactly (test_name_whitespace_is_sent_exactly); only the stdlib's
    reading differs, so the round-trip properties leave them out.
    """
    return not re.search(r"(?<=\s) | (?=\s)", name)


names = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(name=names, subject=names)
def test_any_name_and_subject_round_trip_in_utf8(name: str, subject: str) -> None:
    expected_name = sanitize_header(name)[0].strip()
    expected_subject = sanitize_header(subject)[0]
    assume(stdlib_reads_exactly(expected_name))
    built = build(to_name=name, subject=subject, html=None)
    message = parse(built.data)

    assert message["Subject"] == expected_subject
    assert [a.display_name for a in message["To"].addresses] == [expected_name]
    assert list(message.keys()) == [*TOP_HEADERS, "Content-Transfer-Encoding"]
    assert_wire_format(built.data)


@pytest.mark.parametrize("name", ["斎藤\u3000誠", "斎藤  誠", " 斎藤 \u3000 誠 "])
def test_name_whitespace_is_sent_exactly(name: str) -> None:
    built = build(to_name=name)
    words = re.search(rb"\r\nTo: (.*) <[^<>]+>\r\n", built.data)
    assert words is not None

    assert str(make_header(decode_header(words.group(1).decode("ascii")))) == name.strip()
    # The stdlib reader folds runs that contain an ASCII space; a full-width space alone stays.
    expected = "斎藤\u3000誠" if name == "斎藤\u3000誠" else "斎藤 誠"
    assert parse(built.data)["To"].addresses[0].display_name == expected


jis_text = st.text(
    st.sampled_from("あいうアイウ漢字試験〜■・―ー「」（）ABCabc 123.,-_@<>\"'\\=?"), max_size=60
)


@settings(max_examples=100, deadline=None)
@given(name=jis_text, subject=jis_text.filter(lambda s: s.strip() != ""), text=jis_text)
def test_jis_text_round_trips_in_iso_2022_jp(name: str, subject: str, text: str) -> None:
    subject = subject.strip()
    assume(stdlib_reads_exactly(name.strip()))
    built = build(to_name=name, subject=subject, text=text + "\n", charset="iso-2022-jp")
    message = parse(built.data)

    assert not built.fallback
    assert all(byte < 0x80 for byte in built.data)
    assert message["Subject"] == subject
    assert message["To"].addresses[0].display_name == name.strip()
    assert body(message, "plain") == text + "\n"


@settings(max_examples=200)
@given(st.binary(max_size=800))
def test_base64_body_lines_are_those_of_encodebytes(data: bytes) -> None:
    # A UTF-8 body is encoded in one pass and cut into lines; the stdlib encodes line by line.
    built = build(text=data.decode("utf-8", "replace"), html=None)
    canonical = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    if not canonical.endswith("\n"):
        canonical += "\n"
    encoded = base64.encodebytes(canonical.replace("\n", "\r\n").encode()).replace(b"\n", b"\r\n")
    assert built.data.endswith(b"\r\n\r\n" + encoded)


def test_a_bad_from_setting_fails_every_time_not_only_the_first() -> None:
    # The encoded From/Reply-To lines are cached; a failure must never be.
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"message\.from"):
            build(from_="SmileWorks事務局")
    assert b"\r\nFrom: " in build().data
