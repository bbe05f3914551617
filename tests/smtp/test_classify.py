"""The one classifier, fed the exception objects aiosmtplib raises (no socket needed)."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from jobs.smtp import Outcome, Phase, classify
from jobs.smtp.classify import enhanced_status, one_line

SERVER = "127.0.0.1:2525"


def refused(code: int, text: str) -> aiosmtplib.SMTPRecipientRefused:
    return aiosmtplib.SMTPRecipientRefused(code, text, "taro@example.jp")


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (550, "5.1.1 <taro@example.jp>: user unknown", (5, 1, 1)),
        (550, "  5.1.10 null MX", (5, 1, 10)),
        (450, "4.2.0 greylisted", (4, 2, 0)),
        (550, "4.1.1 class disagrees with the code", None),
        (550, "User unknown", None),
        (550, "5.1.1234 not a status", None),
    ],
)
def test_enhanced_status(code: int, text: str, expected: tuple[int, int, int] | None) -> None:
    assert enhanced_status(code, text) == expected


@pytest.mark.parametrize("code", [421, 450, 451, 452, 454])
def test_4xx_at_rcpt_is_transient(code: int) -> None:
    verdict = classify(refused(code, "4.7.1 try later"), Phase.RCPT, SERVER)
    assert (verdict.outcome, verdict.code, verdict.hard_bounce) == (Outcome.TRANSIENT, code, False)
    assert verdict.setup_error is None


def test_5_1_1_at_rcpt_is_a_hard_bounce() -> None:
    verdict = classify(refused(550, "5.1.1 user unknown"), Phase.RCPT, SERVER)
    assert (verdict.outcome, verdict.hard_bounce) == (Outcome.PERMANENT, True)
    assert verdict.text == "5.1.1 user unknown"


def test_bare_550_user_unknown_is_permanent_but_not_a_hard_bounce() -> None:
    # Documented choice: only an enhanced 5.1.x status suppresses an address.
    verdict = classify(refused(550, "User unknown"), Phase.RCPT, SERVER)
    assert (verdict.outcome, verdict.hard_bounce) == (Outcome.PERMANENT, False)


@pytest.mark.parametrize("status", ["5.1.7", "5.1.8"])
def test_sender_address_statuses_do_not_bounce_the_recipient(status: str) -> None:
    verdict = classify(refused(550, f"{status} bad sender"), Phase.RCPT, SERVER)
    assert (verdict.outcome, verdict.hard_bounce) == (Outcome.PERMANENT, False)


def test_policy_refusal_is_permanent_without_bounce() -> None:
    verdict = classify(refused(554, "5.7.1 message rejected as spam"), Phase.RCPT, SERVER)
    assert (verdict.outcome, verdict.hard_bounce) == (Outcome.PERMANENT, False)


def test_5xx_after_the_body_is_permanent_and_may_bounce() -> None:
    error = aiosmtplib.SMTPDataError(550, "5.1.1 mailbox unavailable")
    verdict = classify(error, Phase.BODY, SERVER)
    assert (verdict.outcome, verdict.hard_bounce, verdict.after_data) == (
        Outcome.PERMANENT,
        True,
        False,  # a reply came: the outcome is known
    )


def test_sender_refusal_stops_the_run() -> None:
    error = aiosmtplib.SMTPSenderRefused(553, "5.7.1 sender not owned", "info@example.jp")
    verdict = classify(error, Phase.MAIL, SERVER)
    assert verdict.setup_error == (
        "smtp: 127.0.0.1:2525 refused the sender info@example.jp: 553 5.7.1 sender not owned"
    )


def test_message_too_big_at_mail_fails_only_that_message() -> None:
    error = aiosmtplib.SMTPSenderRefused(552, "5.3.4 message too big", "info@example.jp")
    verdict = classify(error, Phase.MAIL, SERVER)
    assert (verdict.outcome, verdict.setup_error) == (Outcome.PERMANENT, None)


def test_auth_535_is_a_setup_error() -> None:
    error = aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Authentication credentials invalid")
    verdict = classify(error, Phase.AUTH, SERVER)
    assert verdict.setup_error is not None
    assert verdict.setup_error.startswith("smtp: 127.0.0.1:2525 refused authentication")
    assert verdict.setup_error.endswith("535 5.7.8 Authentication credentials invalid")


def test_greeting_554_is_a_setup_error_but_421_is_transient() -> None:
    refused_session = classify(
        aiosmtplib.SMTPConnectResponseError(554, "no service for you"), Phase.CONNECT, SERVER
    )
    busy = classify(aiosmtplib.SMTPConnectResponseError(421, "too busy"), Phase.CONNECT, SERVER)
    assert refused_session.setup_error is not None
    assert (busy.outcome, busy.setup_error) == (Outcome.TRANSIENT, None)


@pytest.mark.parametrize(
    "error",
    [
        aiosmtplib.SMTPServerDisconnected("Connection lost"),
        aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
    ],
)
def test_disconnects_and_timeouts_are_transient(error: BaseException) -> None:
    before = classify(error, Phase.DATA, SERVER)
    after = classify(error, Phase.BODY, SERVER)
    assert (before.outcome, before.after_data) == (Outcome.TRANSIENT, False)
    assert (after.outcome, after.after_data) == (Outcome.TRANSIENT, True)


def test_refused_connection_is_transient() -> None:
    error = aiosmtplib.SMTPConnectError("Error connecting to 127.0.0.1 on port 1: refused")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    verdict = classify(error, Phase.CONNECT, SERVER)
    assert (verdict.outcome, verdict.setup_error) == (Outcome.TRANSIENT, None)
    assert verdict.text.startswith("connect: Error connecting")


def test_certificate_failure_behind_a_connect_error_is_a_setup_error() -> None:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "unable to get local issuer certificate"
    error = aiosmtplib.SMTPConnectError("Error connecting to 127.0.0.1 on port 2525")
    error.__cause__ = cause
    verdict = classify(error, Phase.CONNECT, SERVER)
    assert verdict.setup_error == (
        "smtp: certificate verify failed for 127.0.0.1:2525"
        " (unable to get local issuer certificate)"
    )


def test_tls_eof_is_a_disconnect_not_a_setup_error() -> None:
    verdict = classify(ssl.SSLEOFError(8, "EOF occurred"), Phase.STARTTLS, SERVER)
    assert (verdict.outcome, verdict.setup_error) == (Outcome.TRANSIENT, None)


def test_no_common_auth_mechanism_is_a_setup_error() -> None:
    error = aiosmtplib.SMTPException("No suitable authentication method found.")
    assert classify(error, Phase.AUTH, SERVER).setup_error is not None


def test_multiline_replies_become_one_line() -> None:
    assert one_line("5.1.1 first\n5.1.1 second\n") == "5.1.1 first / 5.1.1 second"
