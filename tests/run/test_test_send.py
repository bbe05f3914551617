"""`test-send` and `[message] redirect_all_to` (SPEC §10): real messages, one test inbox only.

A staging copy of the job must never reach a customer: every assertion here checks what the
SMTP server actually received (envelope and headers), and that `test-send` left the ledger as
it found it.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs.ledger.models import LedgerBase
from jobs.source.engine import make_engine
from tests.run.conftest import AS_OF, CAMPAIGN, Site, write_people
from tests.smtpd import Received, SmtpServer

PEOPLE = ("taro@example.jp", "hanako@example.co.jp", "jiro@example.com")
TESTER = "tester@smileworks.example.jp"


def _headers(received: Received) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def _ledger_counts(site: Site) -> dict[str, int]:
    engine = make_engine(site.effective_ledger_url)
    try:
        with engine.connect() as conn:
            return {
                name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for name, table in LedgerBase.metadata.tables.items()
            }
    finally:
        engine.dispose()


@pytest.fixture
def site(make_site: Callable[..., Site], sqlite_url: str, tmp_path: Path) -> Site:
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", PEOPLE))
    return site


def _test_send(site: Site, server: SmtpServer, *extra: str) -> tuple[int, str, str]:
    done = site.cli(
        "test-send", "--campaign", CAMPAIGN, "--as-of", AS_OF.isoformat(), "--to", TESTER,
        *extra, server=server,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_test_send_reaches_only_the_test_address_and_writes_no_ledger(
    site: Site, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server()
    before = _ledger_counts(site)
    code, out, err = _test_send(site, server, "--email", "hanako@example.co.jp")
    assert code == 0, err
    [received] = server.handler.messages
    assert received.rcpt_tos == (TESTER,)
    assert received.mail_from == "info@smileworks.example.jp"
    headers = _headers(received)
    assert headers["X-SWMail-Original-To"] == "hanako@example.co.jp"
    assert str(headers["Subject"]).startswith("[TEST] ")
    assert headers["To"].addresses[0].addr_spec == TESTER
    assert str(headers["Message-ID"]).startswith("<test.")  # never a real delivery's id
    assert "試験 太郎2" in headers.get_body(preferencelist=("plain",)).get_content()  # real text
    assert f"to {TESTER} only (nothing recorded in the ledger)" in out
    assert _ledger_counts(site) == before


def test_a_sample_spreads_over_recipients(
    site: Site, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server()
    code, _, err = _test_send(site, server, "--sample", "2")
    assert code == 0, err
    assert [m.rcpt_tos for m in server.handler.messages] == [(TESTER,), (TESTER,)]
    originals = {str(_headers(m)["X-SWMail-Original-To"]) for m in server.handler.messages}
    assert len(originals) == 2 and originals <= set(PEOPLE)


def test_a_refused_test_copy_is_exit_3(site: Site, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    server.handler.rcpt[TESTER] = "550 5.1.1 no such user"
    code, out, _ = _test_send(site, server, "--email", "taro@example.jp")
    assert code == 3
    assert "failed: the message for taro@example.jp" in out
    assert "550" in out


def test_test_send_refuses_a_bad_address_or_an_unknown_person(
    site: Site, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server()
    done = site.cli("test-send", "--campaign", CAMPAIGN, "--to", "nobody", server=server)
    assert done.returncode == 2 and "--to 'nobody' is not a valid e-mail address" in done.stderr
    code, _, err = _test_send(site, server, "--email", "stranger@example.jp")
    assert code == 2 and "receives nothing" in err
    assert server.handler.messages == []


def test_redirect_all_to_sends_a_real_run_to_one_address_and_says_so_first(
    site: Site, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server()
    site.extra_env["SWMAIL_MESSAGE_REDIRECT_ALL_TO"] = TESTER
    done = site.cli(*site.run_args(), server=server)
    assert done.returncode == 0, done.stderr
    first_line = done.stdout.splitlines()[0]
    assert first_line.startswith(f"REDIRECTED: every message goes to {TESTER}")
    assert len(server.handler.messages) == len(PEOPLE)
    assert all(m.rcpt_tos == (TESTER,) for m in server.handler.messages)
    originals = sorted(str(_headers(m)["X-SWMail-Original-To"]) for m in server.handler.messages)
    assert originals == sorted(PEOPLE)
    assert all(str(_headers(m)["Subject"]).startswith("[TEST] ") for m in server.handler.messages)
    # the resumed run says it first too
    again = site.cli(*site.run_args(), server=server)
    assert again.stdout.splitlines()[0] == first_line


def test_without_redirect_the_run_says_nothing_about_it(
    site: Site, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server()
    done = site.cli(*site.run_args(), server=server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("run ")
    assert sorted(m.rcpt_tos[0] for m in server.handler.messages) == sorted(PEOPLE)
    assert all("X-SWMail-Original-To" not in _headers(m) for m in server.handler.messages)
    # §10: without message.return_path the envelope sender is the From address, as before
    assert {m.mail_from for m in server.handler.messages} == {"info@smileworks.example.jp"}


def test_a_sample_takes_one_of_each_kind_before_any_repeats() -> None:
    from jobs.delivery.testsend import pick_deliveries
    from resolver.model import Audience, Delivery, Reason

    def delivery(seq: int, audience: Audience, reason: Reason) -> Delivery:
        return Delivery(
            f"p{seq}@example.jp", f"p{seq}@example.jp", "名前", audience, (reason,), (), seq
        )

    customers = [delivery(i, Audience.CUSTOMER, Reason.MYPAGE_CONTACT) for i in range(1, 5)]
    admins = [delivery(i, Audience.CUSTOMER, Reason.SYSTEM_ADMIN) for i in range(5, 7)]
    partner = [delivery(7, Audience.PARTNER, Reason.PARTNER_CONTACT)]
    every = customers + admins + partner
    picked = pick_deliveries(every, email=None, sample=4)
    assert [d.seq for d in picked] == [1, 5, 7, 2]  # one per (audience, reasons), then again
    assert len(pick_deliveries(every, email=None, sample=50)) == len(every)
    assert [d.seq for d in pick_deliveries(every, email="P6@Example.jp", sample=1)] == [6]
