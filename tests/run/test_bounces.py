"""`bounces import` end to end (SPEC §10): a real run, then the real mailbox of its bounces.

The run sends to five people through aiosmtpd; tests/data/bounces/ holds what came back (Postfix
RFC 3464 hard and soft, Exim, qmail, an auto-reply, a bounce of a message never sent). The
Message-IDs in those files are the ones the run gives these people, as every Message-ID is
derived from (campaign, run key, address).
"""

from __future__ import annotations

import email
import email.policy
import mailbox
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs.bounces.importer import ImportReport, import_bounces
from jobs.bounces.reader import read_maildir, read_mbox
from jobs.ledger import ledger_suppressions
from jobs.ledger.models import BounceRow, DeliveryRow, SuppressionRow
from jobs.ledger.values import DeliveryStatus
from jobs.messages.verp import ReturnPath
from jobs.resolution.pipeline import resolve_campaign
from jobs.source.engine import make_engine
from resolver.model import Reason
from tests.run.conftest import AS_OF, CAMPAIGN, RUN_ID, Site, read_csv, write_people
from tests.smtpd import SmtpServer

DATA = Path(__file__).resolve().parents[1] / "data" / "bounces"
HARD, SOFT, EXIM, QMAIL, OK = (
    "hard.user@example.jp",
    "soft.user@example.jp",
    "exim.user@example.jp",
    "qmail.user@example.jp",
    "ok@example.jp",
)
NO_VERP = ReturnPath("", None)


@pytest.fixture
def sent_site(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    db_url: str,
    tmp_path: Path,
) -> Site:
    """A run that sent one message to each of the five people, all accepted by the relay."""
    site = make_site(db_url)
    site.prepare(write_people(tmp_path / "data", (HARD, SOFT, EXIM, QMAIL, OK)))
    assert site.run(smtp_server()).exit_code == 0
    return site


def _import(
    site: Site, messages: list[tuple[str, bytes]], path: ReturnPath = NO_VERP
) -> ImportReport:
    ledger = make_engine(site.effective_ledger_url)
    try:
        return import_bounces(ledger, messages, path)
    finally:
        ledger.dispose()


def _ledger_rows(site: Site) -> tuple[object, ...]:
    """Everything a bounce import can change, to compare before and after a second import."""
    ledger = make_engine(site.effective_ledger_url)
    try:
        with ledger.connect() as conn:
            return tuple(
                tuple(conn.execute(stmt).all())
                for stmt in (
                    sa.select(DeliveryRow.id, DeliveryRow.status, DeliveryRow.dsn_status,
                              DeliveryRow.last_error).order_by(DeliveryRow.id),
                    sa.select(BounceRow.delivery_id, BounceRow.fingerprint, BounceRow.kind)
                    .order_by(BounceRow.id),
                    sa.select(SuppressionRow.email, SuppressionRow.created_at)
                    .order_by(SuppressionRow.email),
                )
            )  # fmt: skip
    finally:
        ledger.dispose()


def test_bounces_mark_deliveries_and_suppress_hard_ones_only(sent_site: Site) -> None:
    report = _import(sent_site, list(read_maildir(DATA / "maildir")))
    assert (report.messages, report.bounces, report.by_message_id) == (6, 5, 4)
    assert [n.subject for n in report.not_bounces] == ["自動応答: 不在のお知らせ"]
    [unmatched] = report.unmatched
    assert "0badc0ffee" in unmatched.why and "stranger@example.com" in unmatched.why
    t = report.tally
    assert (t.hard, t.soft, t.bounced, t.suppressed, t.repeated) == (3, 1, 3, 3, 0)

    statuses = sent_site.statuses()
    assert statuses == {
        HARD: DeliveryStatus.BOUNCED,
        EXIM: DeliveryStatus.BOUNCED,
        QMAIL: DeliveryStatus.BOUNCED,
        SOFT: DeliveryStatus.SENT,  # §10: a 4.x.x never changes the delivery
        OK: DeliveryStatus.SENT,
    }
    rows = sent_site.deliveries()
    assert rows[HARD].status is DeliveryStatus.BOUNCED
    assert rows[HARD].dsn_status == "5.1.1"
    assert rows[HARD].last_error is not None and "User unknown" in rows[HARD].last_error
    assert rows[QMAIL].last_error == "Sorry, no mailbox here by that name. (#5.1.1)"
    assert sent_site.suppressions() == {HARD, EXIM, QMAIL}
    assert sent_site.stats()[DeliveryStatus.BOUNCED] == 3


def test_the_next_resolution_skips_hard_bounces_but_not_soft_ones(sent_site: Site) -> None:
    _import(sent_site, list(read_mbox(DATA / "bounces.mbox")))
    source = make_engine(sent_site.url)
    ledger = make_engine(sent_site.effective_ledger_url)
    try:
        settings = sent_site.settings()
        campaign, _ = sent_site.composer(settings)
        with resolve_campaign(
            source, campaign, AS_OF, extra_suppressed=ledger_suppressions(ledger)
        ) as resolved:
            sent_to = {d.email for d in resolved.deliveries}
            suppressed = resolved.summary.reasons[Reason.SUPPRESSED]
    finally:
        source.dispose()
        ledger.dispose()
    assert sent_to == {SOFT, OK}
    assert suppressed == 3


def test_importing_again_changes_nothing(sent_site: Site) -> None:
    _import(sent_site, list(read_maildir(DATA / "maildir")))
    before = _ledger_rows(sent_site)
    again = _import(sent_site, list(read_maildir(DATA / "maildir")))
    # the same bounces through the other mailbox format are the same bounces
    as_mbox = _import(sent_site, list(read_mbox(DATA / "bounces.mbox")))
    for report in (again, as_mbox):
        t = report.tally
        assert (t.hard, t.soft, t.bounced, t.suppressed, t.repeated) == (0, 0, 0, 0, 4)
    assert _ledger_rows(sent_site) == before


def test_an_operator_lifting_a_bounce_is_not_undone_by_a_reimport(
    sent_site: Site,
) -> None:
    _import(sent_site, list(read_maildir(DATA / "maildir")))
    assert sent_site.cli("suppress", "remove", HARD).returncode == 0
    _import(sent_site, list(read_maildir(DATA / "maildir")))
    assert HARD not in sent_site.suppressions()


# --- VERP -----------------------------------------------------------------------------------------

VERP_KEY_ENV = "SWMAIL_TEST_VERP_KEY"
VERP_KEY = "test-verp-key-0123456789abcdef"
RETURN_PATH = "bounce+{token}@mailer.smileworks.example.jp"


def _dsn(to: str, recipient: str, returned_id: str = "") -> bytes:
    """A minimal RFC 3464 bounce delivered to `to`, with or without the returned headers."""
    returned = (
        f"--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: {returned_id}\nTo: {recipient}\n\n"
        if returned_id
        else ""
    )
    return (
        f"Return-Path: <>\nX-Original-To: {to}\nDelivered-To: {to}\n"
        "From: MAILER-DAEMON@relay.example.jp (Mail Delivery System)\n"
        f"To: {to}\nSubject: Undelivered Mail Returned to Sender\n"
        f"Message-Id: <dsn.{abs(hash((to, recipient)))}@relay.example.jp>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nUndeliverable.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example.jp\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown\n\n"
        f"{returned}--B--\n"
    ).encode()


@pytest.fixture
def verp_site(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Site, SmtpServer]:
    monkeypatch.setenv(VERP_KEY_ENV, VERP_KEY)
    site = make_site(sqlite_url)
    site.extra_env.update(
        {
            "SWMAIL_MESSAGE_RETURN_PATH": RETURN_PATH,
            "SWMAIL_MESSAGE_VERP_KEY_ENV": VERP_KEY_ENV,
            VERP_KEY_ENV: VERP_KEY,  # for the CLI subprocesses (the run is in-process)
        }
    )
    site.prepare(write_people(tmp_path / "data", (HARD, OK)))
    server = smtp_server()
    assert site.run(server).exit_code == 0
    return site, server


def test_verp_gives_each_delivery_its_own_envelope_sender_and_a_bounce_finds_it(
    verp_site: tuple[Site, SmtpServer], tmp_path: Path
) -> None:
    site, server = verp_site
    senders = {m.rcpt_tos[0]: m.mail_from for m in server.handler.messages}
    assert set(senders) == {HARD, OK}
    assert len(set(senders.values())) == 2
    for address in senders.values():
        assert address.startswith("bounce+") and address.endswith("@mailer.smileworks.example.jp")
    # the From header is unchanged: VERP is the envelope only
    parsed = email.message_from_bytes(server.handler.messages[0].data, policy=email.policy.default)
    assert parsed["From"].addresses[0].addr_spec == "info@smileworks.example.jp"

    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(_dsn(senders[HARD], HARD))  # no returned headers: only the token can match
    report = site.cli("bounces", "import", "--maildir", str(tmp_path / "bounces"))
    assert report.returncode == 0, report.stderr
    assert "matched 0 by Message-ID and 1 by VERP token" in report.stdout
    assert site.statuses() == {HARD: DeliveryStatus.BOUNCED, OK: DeliveryStatus.SENT}
    assert site.suppressions() == {HARD}


def test_a_forged_verp_token_is_refused(verp_site: tuple[Site, SmtpServer], tmp_path: Path) -> None:
    site, server = verp_site
    genuine = {m.rcpt_tos[0]: m.mail_from for m in server.handler.messages}[OK]
    local, domain = genuine.split("@")
    forged_mac = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    other_id = "bounce+" + "zz-" + local.split("-", 1)[1] + "@" + domain  # another delivery id
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    ok_message_id = {m.rcpt_tos[0]: m.message_id for m in server.handler.messages}[OK]
    # even with the genuine Message-ID in its returned headers, a bad token is not matched
    box.add(_dsn(forged_mac, OK, returned_id=ok_message_id))
    box.add(_dsn(other_id, "never.mailed@example.jp"))
    report = site.cli("bounces", "import", "--maildir", str(tmp_path / "bounces"))
    assert report.returncode == 0, report.stderr
    assert "refused 2 (forged token)" in report.stdout
    assert "does not verify" in report.stdout
    assert site.statuses() == {HARD: DeliveryStatus.SENT, OK: DeliveryStatus.SENT}
    assert site.suppressions() == set()


# --- the operator's view: status, audit export, explain, dry run ---------------------------------


def test_status_audit_explain_and_dry_run_after_an_import(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (HARD, SOFT, EXIM, QMAIL, OK)))
    assert site.cli(*site.run_args(), server=smtp_server()).returncode == 0
    before = site.cli("status", "--run", RUN_ID)
    assert "sent 5  deferred 0  failed 0  bounced 0" in before.stdout

    imported = site.cli("bounces", "import", "--mbox", str(DATA / "bounces.mbox"))
    assert imported.returncode == 0, imported.stderr
    assert "read 6 messages" in imported.stdout
    assert "recorded 3 hard and 1 soft bounces (0 imported before)" in imported.stdout
    assert "自動応答: 不在のお知らせ" in imported.stdout  # listed as not a bounce
    assert "stranger@example.com" in imported.stdout  # listed as unmatched

    after = site.cli("status", "--run", RUN_ID)
    assert "sent 2  deferred 0  failed 0  bounced 3" in after.stdout
    assert "[finished]" in after.stdout  # bounced is final: the run stays finished

    out = tmp_path / "audit.csv"
    assert site.cli("audit", "export", "--run", RUN_ID, "--out", str(out)).returncode == 0
    cells = {r["email"]: (r["status"], r["last_smtp_code"]) for r in read_csv(out)}
    assert cells == {
        HARD: ("bounced", "5.1.1"),
        EXIM: ("bounced", "5.1.1"),
        QMAIL: ("bounced", "5.1.1"),
        SOFT: ("sent", "250"),
        OK: ("sent", "250"),
    }

    explained = site.cli(
        "explain", "--campaign", CAMPAIGN, "--as-of", AS_OF.isoformat(), "--email", HARD
    )
    assert explained.returncode == 0, explained.stderr
    assert "SUPPRESSED" in explained.stdout
    assert f"suppressed by a hard bounce in run {RUN_ID}" in explained.stdout

    dry = tmp_path / "dry"
    args = ("dry-run", "--campaign", CAMPAIGN, "--as-of", "2026-12-08", "--out", str(dry))
    assert site.cli(*args).returncode == 0
    reasons = {r["email"]: r["reasons"] for r in read_csv(dry / "audit.csv")}
    # a one-off campaign on another day: every address was sent already (§4 ALREADY_SENT, a
    # bounced delivery included); only the hard bounces are suppressed as well
    assert reasons[HARD] == reasons[EXIM] == reasons[QMAIL] == "SUPPRESSED;ALREADY_SENT"
    assert reasons[SOFT] == reasons[OK] == "ALREADY_SENT"


def test_bounces_import_needs_exactly_one_mailbox(
    make_site: Callable[..., Site], sqlite_url: str
) -> None:
    site = make_site(sqlite_url)
    result = site.cli("bounces", "import")
    assert result.returncode == 2
    assert "exactly one of --maildir DIR, --mbox FILE" in result.stderr


def test_a_run_with_verp_but_no_key_stops_before_sending(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    site = make_site(sqlite_url)
    site.extra_env.update(
        {"SWMAIL_MESSAGE_RETURN_PATH": RETURN_PATH, "SWMAIL_MESSAGE_VERP_KEY_ENV": VERP_KEY_ENV}
    )
    site.prepare(write_people(tmp_path / "data", (OK,)))
    server = smtp_server()
    done = site.cli(*site.run_args(), server=server)
    assert done.returncode == 2
    assert f"message.verp_key_env names {VERP_KEY_ENV!r}" in done.stderr
    assert server.handler.messages == []


def test_what_a_mailbox_holds_reaches_the_terminal_escaped(
    make_site: Callable[..., Site], sqlite_url: str, tmp_path: Path
) -> None:
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (OK,)))
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    # an encoded subject that decodes to an ESC sequence retitling the operator's terminal
    box.add(b"From: x@example.jp\nSubject: =?UTF-8?B?G10wO3B3bmVkBw==?=\n\nhello\n")
    done = site.cli("bounces", "import", "--maildir", str(tmp_path / "bounces"))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "\\x1b]0;pwned\\x07" in done.stdout
