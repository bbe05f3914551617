"""One message's replies, read without a socket: the pipelined and plain dialogues share this."""

from __future__ import annotations

import pytest
from aiosmtplib import SMTPResponse, SMTPServerDisconnected

from jobs.smtp import Envelope, Outcome, Phase, SmtpSetupError
from jobs.smtp.transaction import Extensions, Next, Transaction

SERVER = "relay.example.jp:25"
EXTENSIONS = Extensions(size=True, eight_bit_mime=True, smtputf8=False, pipelining=True)
OK = SMTPResponse(250, "2.0.0 Ok")
GO = SMTPResponse(354, "End data with <CR><LF>.<CR><LF>")


def _fate(txn: Transaction) -> tuple[Outcome, int | None, Phase | None]:
    assert txn.result is not None, "the transaction's fate is not known yet"
    return txn.result.outcome, txn.result.code, txn.result.phase


def _start(*recipients: str, data: bytes = b"Subject: x\r\n\r\nbody\r\n") -> Transaction:
    envelope = Envelope("info@smileworks.example.jp", recipients, data, "<m@x>", "k")
    return Transaction.start(envelope, EXTENSIONS, SERVER)


def test_the_commands_announce_size_and_name_each_recipient() -> None:
    txn = _start("a@example.jp", "b@example.jp", data="件名\r\n".encode())
    assert txn.commands == (
        b"MAIL FROM:<info@smileworks.example.jp> SIZE=8 BODY=8BITMIME\r\n"
        b"RCPT TO:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\n"
    )


def test_an_accepted_message() -> None:
    txn = _start("a@example.jp")
    assert txn.on_mail(OK)
    txn.on_rcpt("a@example.jp", OK)
    assert txn.on_data(GO) is Next.BODY
    assert txn.phase is Phase.DATA  # not BODY until the connection wrote it
    txn.body_sent()
    result = txn.on_end(SMTPResponse(250, "2.0.0 Ok: queued as 4F2"))
    assert (result.outcome, result.code, result.text) == (
        Outcome.SENT,
        250,
        "2.0.0 Ok: queued as 4F2",
    )


def test_a_refused_rcpt_then_554_to_data_keeps_the_rcpt_reply() -> None:
    txn = _start("gone@example.jp")
    txn.on_mail(OK)
    txn.on_rcpt("gone@example.jp", SMTPResponse(550, "5.1.1 <gone@example.jp>: user unknown"))
    assert txn.on_data(SMTPResponse(554, "5.5.1 Error: no valid recipients")) is Next.RESET
    assert _fate(txn) == (Outcome.PERMANENT, 550, Phase.RCPT)
    assert txn.result.recipients[0].hard_bounce


def test_354_without_an_accepted_recipient_ends_with_a_lone_dot() -> None:
    txn = _start("gone@example.jp")
    txn.on_mail(OK)
    txn.on_rcpt("gone@example.jp", SMTPResponse(550, "5.1.1 user unknown"))
    assert txn.on_data(GO) is Next.EMPTY
    assert txn.result is not None and txn.result.code == 550


def test_a_4xx_to_mail_decides_and_the_503s_after_it_do_not() -> None:
    txn = _start("a@example.jp")
    assert not txn.on_mail(SMTPResponse(451, "4.3.0 try again later"))
    txn.on_rcpt("a@example.jp", SMTPResponse(503, "5.5.1 Error: need MAIL command"))
    assert txn.on_data(SMTPResponse(503, "5.5.1 Error: need RCPT command")) is Next.RESET
    assert _fate(txn) == (Outcome.TRANSIENT, 451, Phase.MAIL)
    assert not txn.result.recipients[0].hard_bounce


def test_a_5xx_to_mail_refuses_the_sender_of_every_message() -> None:
    txn = _start("a@example.jp")
    with pytest.raises(SmtpSetupError, match="refused the sender"):
        txn.on_mail(SMTPResponse(550, "5.7.1 sender not allowed"))


def test_a_partial_refusal_sends_to_the_others() -> None:
    txn = _start("a@example.jp", "gone@example.jp")
    txn.on_mail(OK)
    txn.on_rcpt("a@example.jp", OK)
    txn.on_rcpt("gone@example.jp", SMTPResponse(550, "5.1.1 user unknown"))
    assert txn.on_data(GO) is Next.BODY
    txn.body_sent()
    result = txn.on_end(OK)
    assert [r.outcome for r in result.recipients] == [Outcome.SENT, Outcome.PERMANENT]


@pytest.mark.parametrize(
    ("replies", "phase", "after_data"),
    [
        ((), Phase.MAIL, False),  # MAIL, RCPT and DATA written, nothing answered
        ((OK,), Phase.RCPT, False),
        ((OK, OK), Phase.DATA, False),
        ((OK, OK, GO), Phase.DATA, False),  # 354, but the body was never written
        ((OK, OK, GO, "body"), Phase.BODY, True),  # the end of data was written: unknown
    ],
)
def test_a_disconnect_is_an_unknown_outcome_only_after_the_end_of_data(
    replies: tuple[SMTPResponse | str, ...], phase: Phase, after_data: bool
) -> None:
    txn = _start("a@example.jp")
    steps = [
        lambda r: txn.on_mail(r),
        lambda r: txn.on_rcpt("a@example.jp", r),
        lambda r: txn.on_data(r),
        lambda r: txn.body_sent(),
    ]
    for step, reply in zip(steps, replies, strict=False):
        step(reply)
    result = txn.failed(SMTPServerDisconnected("Connection lost"))
    assert (result.outcome, result.code, result.phase, result.after_data) == (
        Outcome.TRANSIENT,
        None,
        phase,
        after_data,
    )


def test_a_failure_after_the_result_is_known_changes_nothing() -> None:
    txn = _start("a@example.jp")
    txn.on_mail(SMTPResponse(421, "4.3.2 shutting down"))
    result = txn.failed(SMTPServerDisconnected("Connection lost"))
    assert (result.code, result.phase) == (421, Phase.MAIL)


def test_a_non_ascii_address_without_smtputf8_is_refused_before_any_command() -> None:
    txn = _start("太郎@example.jp")
    assert txn.result is not None
    assert txn.result.outcome is Outcome.PERMANENT
    assert "SMTPUTF8" in txn.result.text


def test_a_4xx_to_data_defers_the_accepted_recipients() -> None:
    txn = _start("a@example.jp")
    txn.on_mail(OK)
    txn.on_rcpt("a@example.jp", OK)
    assert txn.on_data(SMTPResponse(451, "4.3.0 queue full")) is Next.RESET
    assert _fate(txn) == (Outcome.TRANSIENT, 451, Phase.DATA)


def test_a_5_1_1_after_the_body_bounces_a_single_recipient() -> None:
    txn = _start("gone@example.jp")
    txn.on_mail(OK)
    txn.on_rcpt("gone@example.jp", OK)
    txn.on_data(GO)
    txn.body_sent()
    result = txn.on_end(SMTPResponse(550, "5.1.1 mailbox unknown"))
    assert (result.outcome, result.phase) == (Outcome.PERMANENT, Phase.BODY)
    assert [r.hard_bounce for r in result.recipients] == [True]
