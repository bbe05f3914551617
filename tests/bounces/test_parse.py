"""Bounce messages as relays really write them (tests/data/bounces/), parsed without a database.

The fixtures are a Maildir and an mbox holding the same six messages: a Postfix RFC 3464 hard
bounce (5.1.1) and delay warning (4.2.2), an Exim and a qmail bounce (non-standard, read by
flufl.bounce), a Japanese out-of-office auto-reply, and a Postfix bounce of a Message-ID the
job never sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.bounces.parse import Notice, parse_notice
from jobs.bounces.reader import read_maildir, read_mbox
from jobs.errors import InputError
from jobs.ledger.values import BounceKind

DATA = Path(__file__).resolve().parents[1] / "data" / "bounces"
MAILDIR = DATA / "maildir"
MBOX = DATA / "bounces.mbox"

HARD_ID = "<7457e68be54864218ff757c1412f3d7f@mailer.smileworks.example.jp>"
SOFT_ID = "<d9feed42098d2f459db081b5ec097153@mailer.smileworks.example.jp>"
EXIM_ID = "<52543ebaf4a301de5dfd919420426b14@mailer.smileworks.example.jp>"
QMAIL_ID = "<f1008d017216477b844e19d4bed07adc@mailer.smileworks.example.jp>"
UNKNOWN_ID = "<0badc0ffee0badc0ffee0badc0ffee00@mailer.smileworks.example.jp>"


def _by_subject(messages: list[tuple[str, bytes]]) -> dict[str, Notice]:
    notices = [parse_notice(data) for _, data in messages]
    return {n.original_message_ids[0] if n.original_message_ids else n.subject: n for n in notices}


@pytest.fixture(params=["maildir", "mbox"])
def notices(request: pytest.FixtureRequest) -> dict[str, Notice]:
    reader = read_maildir(MAILDIR) if request.param == "maildir" else read_mbox(MBOX)
    messages = list(reader)
    assert len(messages) == 6
    return _by_subject(messages)


def test_postfix_rfc3464_hard_bounce(notices: dict[str, Notice]) -> None:
    n = notices[HARD_ID]
    assert n.detector == "rfc3464"
    [failure] = n.failures
    assert (failure.recipient, failure.kind, failure.status) == (
        "hard.user@example.jp",
        BounceKind.HARD,
        "5.1.1",
    )
    # the folded Diagnostic-Code, unfolded, without its "smtp;" type
    assert failure.diagnostic == (
        "550 5.1.1 <hard.user@example.jp>: Recipient address rejected: User unknown in virtual"
        " mailbox table"
    )
    assert n.fingerprint == "<20261201010211.4Yb1X2Kq3Wz9sT@relay.smileworks.example.jp>"


def test_postfix_delay_warning_is_soft(notices: dict[str, Notice]) -> None:
    [failure] = notices[SOFT_ID].failures
    assert (failure.kind, failure.status) == (BounceKind.SOFT, "4.2.2")
    assert failure.diagnostic == "452 4.2.2 <soft.user@example.jp>: Mailbox full"


def test_exim_bounce_through_flufl_bounce(notices: dict[str, Notice]) -> None:
    n = notices[EXIM_ID]
    assert n.detector == "flufl.bounce"
    [failure] = n.failures
    assert (failure.recipient, failure.kind, failure.status) == (
        "exim.user@example.jp",
        BounceKind.HARD,
        "5.1.1",
    )
    assert failure.diagnostic.startswith("550 5.1.1 <exim.user@example.jp>")


def test_qmail_bounce_through_flufl_bounce(notices: dict[str, Notice]) -> None:
    n = notices[QMAIL_ID]
    [failure] = n.failures
    assert (failure.recipient, failure.kind, failure.status) == (
        "qmail.user@example.jp",
        BounceKind.HARD,
        "5.1.1",
    )
    assert failure.diagnostic == "Sorry, no mailbox here by that name. (#5.1.1)"
    # qmail gives its bounces no Message-ID: the bytes identify it
    assert n.fingerprint.startswith("sha256:")


def test_an_auto_reply_is_not_a_bounce(notices: dict[str, Notice]) -> None:
    n = notices["自動応答: 不在のお知らせ"]  # its RFC 2047 subject, decoded
    assert not n.is_bounce
    assert n.original_message_ids == ()  # In-Reply-To names our message: still no bounce


def test_the_unknown_message_id_is_read_like_any_other(notices: dict[str, Notice]) -> None:
    assert notices[UNKNOWN_ID].failures[0].recipient == "stranger@example.com"


def test_the_envelope_recipient_is_kept_for_verp(notices: dict[str, Notice]) -> None:
    assert notices[HARD_ID].envelope_to == ("info@smileworks.example.jp",)


def test_maildir_and_mbox_give_the_same_messages() -> None:
    assert sorted(d for _, d in read_maildir(MAILDIR)) == sorted(d for _, d in read_mbox(MBOX))


def test_a_delivered_action_is_no_failure() -> None:
    data = (MAILDIR / "new" / "1764550931.V801I2a1b3cM101.mx.smileworks.example.jp").read_bytes()
    assert not parse_notice(data.replace(b"Action: failed", b"Action: delivered")).is_bounce


@pytest.mark.parametrize("where", ["maildir", "mbox"])
def test_a_missing_mailbox_is_an_input_error(tmp_path: Path, where: str) -> None:
    with pytest.raises(InputError, match="Maildir" if where == "maildir" else "mbox"):
        list(read_maildir(tmp_path) if where == "maildir" else read_mbox(tmp_path / "none"))
