"""`status` and `audit export` through the CLI (SPEC §5, §8): counts from the ledger, exit codes.

One run leaves one delivery of each kind (sent, deferred, failed) and one skip row; the CLI must
report exactly that, as text, as JSON and as the audit CSV, and refuse an unknown RUN_ID with
exit 2 and a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.run.conftest import RUN_ID, ScriptedHandler, Site, read_csv, write_people
from tests.smtpd import SmtpServer

SENT = "ok@example.jp"
DEFERRED = "busy@example.jp"
FAILED = "unknown@example.jp"
INVALID = "not-an-address"


@pytest.fixture
def one_of_each(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    tmp_path: Path,
) -> Site:
    """A site whose run has left one delivery sent, one deferred, one failed, and a skip row."""
    handler = ScriptedHandler(
        rcpt={DEFERRED: "451 4.3.0 try again later", FAILED: "550 5.1.1 no such user"}
    )
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    site.prepare(write_people(tmp_path / "data", (SENT, DEFERRED, FAILED, INVALID)))
    assert site.run(server).exit_code == 3  # §8: deferred deliveries are left
    return site


def test_status_counts_the_ledger(one_of_each: Site) -> None:
    text = one_of_each.cli("status", "--run", RUN_ID)
    assert text.returncode == 0, text.stderr
    assert f"{RUN_ID}  [in progress]" in text.stdout
    assert "3 deliveries: pending 0  sending 0  sent 1  deferred 1  failed 1" in text.stdout
    assert "left: 1" in text.stdout

    as_json = one_of_each.cli("status", "--json")  # every run: there is one
    assert as_json.returncode == 0, as_json.stderr
    [run] = json.loads(as_json.stdout)
    assert run["run_id"] == RUN_ID
    assert run["deliveries"] == 3
    assert run["counts"] == {"pending": 0, "sending": 0, "sent": 1, "deferred": 1, "failed": 1}
    assert run["left"] == 1
    assert run["finished_at"] is None
    # §9: each sender with what it finished; here the coordinator alone
    [coordinator] = run["workers"]
    assert set(coordinator) == {"id", "sent", "deferred", "failed", "last_seen"}
    assert (coordinator["sent"], coordinator["deferred"], coordinator["failed"]) == (1, 1, 1)
    assert f"coordinator {coordinator['id']}: sent 1  deferred 1  failed 1  (stopped" in text.stdout


def test_audit_export_writes_each_candidate_with_its_delivery_state(
    one_of_each: Site, tmp_path: Path
) -> None:
    out = tmp_path / "export" / "audit.csv"
    out.parent.mkdir()
    exported = one_of_each.cli("audit", "export", "--run", RUN_ID, "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert f"wrote 4 rows to {out}" in exported.stdout
    rows = {row["email"]: row for row in read_csv(out)}
    got = {
        email: (r["decision"], r["reasons"], r["status"], r["attempts"], r["last_smtp_code"])
        for email, r in rows.items()
    }
    assert got == {
        SENT: ("send", "MYPAGE_CONTACT", "sent", "1", "250"),
        DEFERRED: ("send", "MYPAGE_CONTACT", "deferred", "3", "451"),
        FAILED: ("send", "MYPAGE_CONTACT", "failed", "1", "550"),
        INVALID: ("skip", "INVALID_EMAIL", "", "", ""),
    }
    assert rows[FAILED]["last_error"] == "5.1.1 no such user"
    assert rows[SENT]["sent_at"] != "" and rows[DEFERRED]["sent_at"] == ""
    assert list(out.parent.iterdir()) == [out]  # no partial file left behind


@pytest.mark.parametrize(
    "command",
    [("status", "--run", "maintenance-notice/1999-01-01"),
     ("audit", "export", "--run", "maintenance-notice/1999-01-01", "--out", "x.csv")],
    ids=["status", "audit-export"],
)  # fmt: skip
def test_an_unknown_run_is_exit_2(one_of_each: Site, command: tuple[str, ...]) -> None:
    result = one_of_each.cli(*command)
    assert result.returncode == 2
    assert "Error: no run 'maintenance-notice/1999-01-01' in the ledger" in result.stderr
    assert not (one_of_each.workdir / "x.csv").exists()


def test_status_without_a_ledger_says_to_run_db_init(
    make_site: Callable[..., Site], sqlite_url: str
) -> None:
    site = make_site(sqlite_url)
    missing = site.cli("status")
    assert missing.returncode == 2
    # no database file at all: status does not create one (issue 6)
    assert "does not exist" in missing.stderr and "swmail db init" in missing.stderr

    assert site.cli("db", "init").returncode == 0
    empty = site.cli("status")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.strip() == "no runs yet"
