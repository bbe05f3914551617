"""Pure values of the sending layer: wire encoding, envelope checks, outcome arithmetic."""

from __future__ import annotations

import pytest

from jobs.smtp import Envelope, FinalResult, FinalStatus, Outcome, RecipientResult, SendResult
from jobs.smtp.envelope import crlf, wire_body


def test_wire_body_dot_stuffs_and_terminates() -> None:
    assert wire_body(b"a\r\n.b\r\n..c\r\n") == b"a\r\n..b\r\n...c\r\n.\r\n"


def test_wire_body_normalizes_bare_line_endings() -> None:
    assert wire_body(b"a\nb\rc") == b"a\r\nb\r\nc\r\n.\r\n"


def test_crlf_counts_the_size_announced_to_the_server() -> None:
    assert len(crlf(b"a\nb")) == len(b"a\r\nb\r\n")


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
