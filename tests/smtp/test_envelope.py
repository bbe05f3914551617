"""Pure values of the sending layer: wire encoding, envelope checks, outcome arithmetic."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.smtp import Envelope, FinalResult, FinalStatus, Outcome, RecipientResult, SendResult
from jobs.smtp.envelope import crlf, dot_stuffed, wire_body

# The definitions as regular expressions (how they were first written): CRLF, lone LF and lone
# CR are each one line break; a dot that begins a line is doubled.
_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def reference_crlf(data: bytes) -> bytes:
    body = _LINE_ENDINGS.sub(b"\r\n", data)
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def reference_wire_body(data: bytes) -> bytes:
    return _LEADING_DOT.sub(b"..", reference_crlf(data)) + b".\r\n"


# Bytes made of the pieces that matter here, so that every mix of line breaks and dots occurs.
line_soup = st.lists(
    st.sampled_from(
        [b"\r", b"\n", b"\r\n", b"\n\r", b".", b"..", b"a", b" ", b"\x00", b"\xe3\x81\x82"]
    ),
    max_size=40,
).map(b"".join)


def test_wire_body_dot_stuffs_and_terminates() -> None:
    assert wire_body(b"a\r\n.b\r\n..c\r\n") == b"a\r\n..b\r\n...c\r\n.\r\n"


def test_wire_body_normalizes_bare_line_endings() -> None:
    assert wire_body(b"a\nb\rc") == b"a\r\nb\r\nc\r\n.\r\n"


def test_crlf_counts_the_size_announced_to_the_server() -> None:
    assert len(crlf(b"a\nb")) == len(b"a\r\nb\r\n")


@settings(max_examples=500)
@given(st.one_of(line_soup, st.binary(max_size=300), line_soup.map(lambda b: b"a." * 40 + b)))
def test_wire_form_matches_its_definition(data: bytes) -> None:
    assert crlf(data) == reference_crlf(data)
    assert wire_body(data) == reference_wire_body(data)
    assert dot_stuffed(crlf(data)) == wire_body(data)


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"", b"\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b"\r\n.\r\n", b"\r\n..\r\n.\r\n"),  # a lone dot line would end DATA early
        (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
        (b"a\n\r.b", b"a\r\n\r\n..b\r\n.\r\n"),
        (b"a.\r\n.", b"a.\r\n..\r\n.\r\n"),  # only a dot at the start of a line
        # past the dots looked at one by one, the rest is found by a scan of the whole
        (b"x." * 40 + b"\r\n.end", b"x." * 40 + b"\r\n..end\r\n.\r\n"),
        (b"x." * 40 + b"\r\nend", b"x." * 40 + b"\r\nend\r\n.\r\n"),
    ],
)
def test_wire_body_edge_cases(data: bytes, wire: bytes) -> None:
    assert wire_body(data) == wire


def test_crlf_returns_a_message_already_in_crlf_form_unchanged() -> None:
    data = b"Subject: x\r\n\r\nbody\r\n"
    assert crlf(data) is data  # the common case copies nothing


@pytest.mark.parametrize("address", ["a@example.jp\r\nRCPT TO:<x@evil>", "a\x00@example.jp"])
def test_envelope_refuses_control_characters_in_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        Envelope("info@example.jp", (address,), b"x", "<m@x>", "k")


def test_envelope_refuses_header_style_addresses() -> None:
    with pytest.raises(ValueError, match="bare addresses"):
        Envelope("SmileWorks事務局 <info@example.jp>", ("a@example.jp",), b"x", "<m@x>", "k")


def test_envelope_needs_a_recipient() -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        Envelope("info@example.jp", (), b"x", "<m@x>", "k")


def test_only_keeps_bytes_and_message_id() -> None:
    envelope = Envelope("s@x.jp", ("a@x.jp", "b@x.jp"), b"data", "<m@x>", "k")
    narrowed = envelope.only(("b@x.jp",))
    assert (narrowed.recipients, narrowed.data, narrowed.message_id) == (
        ("b@x.jp",),
        b"data",
        "<m@x>",
    )


def _r(outcome: Outcome) -> RecipientResult:
    return RecipientResult("a@x.jp", outcome, None, "")


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ((Outcome.SENT, Outcome.SENT), Outcome.SENT),
        ((Outcome.SENT, Outcome.PERMANENT), Outcome.PERMANENT),
        ((Outcome.PERMANENT, Outcome.TRANSIENT), Outcome.TRANSIENT),
        ((Outcome.SENT, Outcome.TRANSIENT), Outcome.TRANSIENT),
    ],
)
def test_send_result_outcome_follows_recipients(
    outcomes: tuple[Outcome, ...], expected: Outcome
) -> None:
    result = SendResult.of(tuple(_r(o) for o in outcomes), None, "")
    assert result.outcome is expected


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome.SENT, FinalStatus.SENT),
        (Outcome.TRANSIENT, FinalStatus.DEFERRED),
        (Outcome.PERMANENT, FinalStatus.FAILED),
    ],
)
def test_final_status_words(outcome: Outcome, status: FinalStatus) -> None:
    result = FinalResult("k", "<m@x>", outcome, 1, None, "", (_r(outcome),))
    assert result.status is status
    assert str(result.status) in {"sent", "deferred", "failed"}


def test_hard_bounces_lists_flagged_recipients_only() -> None:
    recipients = (
        RecipientResult("gone@x.jp", Outcome.PERMANENT, 550, "5.1.1 no such user", True),
        RecipientResult("full@x.jp", Outcome.PERMANENT, 552, "5.2.2 mailbox full"),
    )
    result = FinalResult("k", "<m@x>", Outcome.PERMANENT, 1, 550, "", recipients)
    assert result.hard_bounces == ("gone@x.jp",)


def test_crlf_form_data_must_end_with_crlf() -> None:
    with pytest.raises(ValueError, match="end with CRLF"):
        Envelope("a@example.jp", ("b@example.jp",), b"Subject: x\r\n\r\nbody", "<m@x>", "k", True)
