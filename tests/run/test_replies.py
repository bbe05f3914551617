"""What each kind of server reply does to a delivery, end to end (SPEC §7 retries, §5 status).

One data set of single-recipient customers, one server scripted per recipient, one real `run`:
the ledger must hold the exact status, attempts and last reply of each delivery, and the server
must have seen exactly the attempts the policy allows (a permanent refusal is never retried).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jobs.ledger import DeliveryStatus
from resolver.model import Decision, Reason
from tests.run.conftest import (
    CAMPAIGN,
    RUN_ID,
    ScriptedHandler,
    Site,
    read_csv,
    received_per_address,
    write_people,
)
from tests.smtpd import DROP, SmtpServer, Stall

OK_1 = "ok1@example.jp"
GREYLISTED = "grey@example.jp"
UNKNOWN = "unknown@example.jp"
REFUSED_AT_DATA = "refused@example.jp"
BUSY = "busy@example.jp"
SLOW_RCPT = "slow@example.jp"
DROPPED_AFTER_BODY = "dropped@example.jp"
SLOW_AFTER_BODY = "late@example.jp"
OK_2 = "ok2@example.jp"
ADDRESSES = (
    OK_1,
    GREYLISTED,
    UNKNOWN,
    REFUSED_AT_DATA,
    BUSY,
    SLOW_RCPT,
    DROPPED_AFTER_BODY,
    SLOW_AFTER_BODY,
    OK_2,
)
MAX_ATTEMPTS = 2
TIMEOUT = 1.0  # seconds; the stalls below are three times longer


def scripted() -> ScriptedHandler:
    return ScriptedHandler(
        rcpt={
            GREYLISTED: ["451 4.7.1 greylisted, try again later"],  # once, then accepted
            UNKNOWN: "550 5.1.1 no such user here",
            BUSY: "421 4.3.2 service busy",  # always
            SLOW_RCPT: Stall(3 * TIMEOUT),  # always later than the client waits
        },
        data_for={
            REFUSED_AT_DATA: "554 5.7.1 message refused",
            DROPPED_AFTER_BODY: [DROP],  # the body arrives, the connection drops, once
            SLOW_AFTER_BODY: [Stall(3 * TIMEOUT)],  # the body arrives, no reply in time, once
        },
    )


def test_each_reply_gives_its_status_attempts_and_code(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    handler = scripted()
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", ADDRESSES))

    outcome = site.run(server, max_attempts=MAX_ATTEMPTS, timeout_seconds=TIMEOUT)

    got = {
        address: (row.status, row.attempts, row.last_smtp_code)
        for address, row in site.deliveries().items()
    }
    assert got == {
        OK_1: (DeliveryStatus.SENT, 1, 250),
        GREYLISTED: (DeliveryStatus.SENT, 2, 250),
        UNKNOWN: (DeliveryStatus.FAILED, 1, 550),
        REFUSED_AT_DATA: (DeliveryStatus.FAILED, 1, 554),
        # §7: transient until max_attempts, then deferred for the next run
        BUSY: (DeliveryStatus.DEFERRED, MAX_ATTEMPTS, 421),
        SLOW_RCPT: (DeliveryStatus.DEFERRED, MAX_ATTEMPTS, None),
        DROPPED_AFTER_BODY: (DeliveryStatus.SENT, 2, 250),
        SLOW_AFTER_BODY: (DeliveryStatus.SENT, 2, 250),
        OK_2: (DeliveryStatus.SENT, 1, 250),
    }
    rows = site.deliveries()
    assert rows[UNKNOWN].last_error == "5.1.1 no such user here"
    assert rows[BUSY].last_error == "4.3.2 service busy"
    assert rows[SLOW_RCPT].last_error is not None and "timed out" in rows[SLOW_RCPT].last_error

    # what the server saw: permanent refusals exactly once, transient ones max_attempts times
    assert handler.rcpts.count(UNKNOWN) == 1
    assert handler.rcpts.count(BUSY) == MAX_ATTEMPTS
    assert handler.rcpts.count(SLOW_RCPT) == MAX_ATTEMPTS
    bodies = received_per_address(handler.bodies)
    assert bodies[UNKNOWN] == 0
    assert bodies[REFUSED_AT_DATA] == 1  # 554 after the body: never sent again
    assert bodies[BUSY] == bodies[SLOW_RCPT] == 0

    # §7: a failure after the body is retried with the very same bytes, hence Message-ID
    for address in (DROPPED_AFTER_BODY, SLOW_AFTER_BODY):
        copies = [b for b in handler.bodies if b.rcpt_tos == (address,)]
        assert len(copies) == 2
        assert copies[0].data == copies[1].data
        assert copies[0].message_id == rows[address].message_id
    assert outcome.pass_report.possible_duplicates == 2
    assert outcome.stats.possible_duplicate == 2

    # §7: a 5.1.x reply puts the address on the ledger's suppression list; 5.7.1 does not
    assert site.suppressions() == {UNKNOWN}
    assert outcome.pass_report.hard_bounces == 1
    assert outcome.exit_code == 3  # §8: deferred deliveries are left


def test_a_hard_bounce_is_suppressed_in_later_runs(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    handler = ScriptedHandler(rcpt={UNKNOWN: "550 5.1.1 no such user here"})
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (OK_1, UNKNOWN)))
    assert site.run(server).exit_code == 0  # failed is final: the run is done

    handler.rcpt.clear()  # even a server that would now accept never gets the address again
    second = site.run(server, run_key="second")

    assert second.exit_code == 0
    audit = {row.email: row for row in site.audit(f"{CAMPAIGN}/second")}
    assert audit[UNKNOWN].decision is Decision.SKIP
    assert audit[UNKNOWN].reasons == (Reason.SUPPRESSED,)
    assert handler.rcpts.count(UNKNOWN) == 1
    assert received_per_address(handler.messages)[OK_1] == 2  # one per run


def test_deferred_is_retried_by_the_next_run_until_the_server_accepts(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    handler = ScriptedHandler(rcpt={BUSY: "421 4.3.2 service busy"})
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (OK_1, BUSY, OK_2)))
    export = tmp_path / "audit.csv"

    first = site.cli(*site.run_args(), server=server)
    assert first.returncode == 3, first.stderr
    assert f"{BUSY}: deferred after 3 attempt(s): 421 4.3.2 service busy" in first.stderr

    again = site.cli(*site.run_args(), server=server)  # still busy: deferred again, exit 3
    assert again.returncode == 3, again.stderr

    handler.rcpt.clear()
    last = site.cli(*site.run_args(), server=server)
    assert last.returncode == 0, last.stderr
    assert "sent 1," in last.stdout  # only the deferred one was sent in this pass

    exported = site.cli("audit", "export", "--run", RUN_ID, "--out", str(export))
    assert exported.returncode == 0, exported.stderr
    got = {
        row["delivery_email"]: (row["status"], row["attempts"], row["last_smtp_code"])
        for row in read_csv(export)
    }
    assert got == {
        OK_1: ("sent", "1", "250"),
        BUSY: ("sent", "7", "250"),  # 3 + 3 + 1 attempts over three runs
        OK_2: ("sent", "1", "250"),
    }
    assert received_per_address(handler.messages) == {OK_1: 1, BUSY: 1, OK_2: 1}


def test_resending_a_delivery_whose_outcome_was_unknown_counts_as_a_possible_duplicate(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    # every attempt of the first run: the body arrives, then the connection drops
    handler = ScriptedHandler(data_for={DROPPED_AFTER_BODY: DROP})
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (OK_1, DROPPED_AFTER_BODY)))

    first = site.run(server, max_attempts=MAX_ATTEMPTS)
    assert first.exit_code == 3
    assert site.deliveries()[DROPPED_AFTER_BODY].status is DeliveryStatus.DEFERRED

    handler.data_for.clear()  # the server answers again
    second = site.run(server, max_attempts=MAX_ATTEMPTS)

    assert second.exit_code == 0
    assert second.pass_report.sent == 1
    # the server may have kept one of the first run's copies: this send may be the second
    assert second.pass_report.possible_duplicates == 1
    copies = [b for b in handler.bodies if b.rcpt_tos == (DROPPED_AFTER_BODY,)]
    assert len(copies) == MAX_ATTEMPTS + 1
    assert len({c.message_id for c in copies}) == 1
