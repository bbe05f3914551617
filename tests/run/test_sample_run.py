"""The whole `run` of the sample data on each real database (SPEC §4 decisions, §5 audit).

The ledger is in the source database, as by default. The run is in-process (its outcome is read
directly), the audit export goes through the CLI (the CSV an auditor opens), and both are checked
against the sample's expected decisions, which were written independently of the program.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs.ledger import DeliveryStatus
from tests.run.conftest import RUN_ID, ScriptedHandler, Site, read_csv, received_per_address
from tests.smtpd import SmtpServer

AUDIT_HEADER = [
    "run_id", "campaign_id", "decision", "reasons", "audience", "account_id", "account_name",
    "source", "person_id", "name", "email", "delivery_email", "status", "attempts",
    "last_smtp_code", "last_error", "message_id", "sent_at",
]  # fmt: skip


DELIVERY_COLUMNS = AUDIT_HEADER[AUDIT_HEADER.index("delivery_email") :]


def _key(row: dict[str, str]) -> str:
    """The sample's candidate key: `source|account_id|person_id`."""
    return f"{row['source']}|{row['account_id']}|{row['person_id']}"


def test_the_sample_run_sends_150_and_the_audit_carries_each_status(
    db_url: str,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sample_data: Path,
    tmp_path: Path,
) -> None:
    handler = ScriptedHandler()
    server = smtp_server(handler)
    site = make_site(db_url)
    site.prepare(sample_data)

    outcome = site.run(server)

    assert outcome.exit_code == 0
    assert outcome.created
    assert outcome.pass_report.sent == 150
    assert outcome.stats.counts == {DeliveryStatus.SENT: 150}
    assert outcome.run.finished_at is not None
    received = received_per_address(handler.messages)
    assert len(received) == 150 and set(received.values()) == {1}
    print(f"\n[{db_url.split(':')[0]}] sample run: {outcome.pass_report.rate:.0f} messages/s")

    export = tmp_path / "audit.csv"
    exported = site.cli("audit", "export", "--run", RUN_ID, "--out", str(export))
    assert exported.returncode == 0, exported.stderr
    assert export.read_bytes().startswith(b"\xef\xbb\xbf")  # §5: a BOM for Excel
    rows = read_csv(export)
    assert list(rows[0]) == AUDIT_HEADER
    expected = read_csv(sample_data / "expected_address.csv")
    # `group` is the delivery address lower-cased (sample-data/README.md)
    got = {_key(r): (r["decision"], r["reasons"], r["delivery_email"].lower()) for r in rows}
    assert got == {r["key"]: (r["decision"], r["reasons"], r["group"]) for r in expected}
    assert Counter(row["decision"] for row in rows) == {"send": 150, "skip": 108, "merged": 3}

    by_address = {row["delivery_email"]: row for row in rows if row["decision"] == "send"}
    assert set(by_address) == set(received)
    for row in rows:
        if row["decision"] == "skip":  # §5: skip rows have no delivery, so no status
            assert [row[c] for c in DELIVERY_COLUMNS] == [""] * len(DELIVERY_COLUMNS)
            continue
        # send rows and merged rows alike: their delivery's state (§5)
        delivery = by_address[row["delivery_email"]]
        assert (row["status"], row["attempts"], row["last_smtp_code"]) == ("sent", "1", "250")
        assert row["message_id"] == delivery["message_id"] != ""
        assert row["sent_at"] == delivery["sent_at"] != ""
    sent_ids = {m.rcpt_tos[0]: m.message_id for m in handler.messages}
    assert {a: r["message_id"] for a, r in by_address.items()} == sent_ids


@pytest.mark.postgres
def test_the_ledger_can_live_in_another_database(
    sqlite_url: str,
    pg_url: str,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sample_data: Path,
) -> None:
    handler = ScriptedHandler()
    server = smtp_server(handler)
    site = make_site(sqlite_url, ledger_url=pg_url)  # §8 database.ledger_url
    assert site.cli("db", "init").returncode == 0
    assert site.cli("db", "import", str(sample_data)).returncode == 0

    ran = site.cli(*site.run_args(), server=server)

    assert ran.returncode == 0, ran.stderr
    assert len(handler.messages) == 150
    assert site.stats().counts == {DeliveryStatus.SENT: 150}  # read from the ledger on pg_url
    source = sa.create_engine(sqlite_url)
    try:
        tables = sa.inspect(source).get_table_names()
    finally:
        source.dispose()
    assert "customers" in tables
    assert not [t for t in tables if t.startswith("swmail_")]  # the job's tables went elsewhere
