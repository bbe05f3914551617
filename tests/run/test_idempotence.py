"""A run is sent once (SPEC §7) and is what its dry run showed (SPEC §8 `dry-run`).

The whole chain goes through the CLI as an operator types it: `db init`, `db import`, `dry-run`,
`run`, `run` again.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from pathlib import Path

from tests.run.conftest import RUN_ID, ScriptedHandler, Site, read_csv, received_per_address
from tests.smtpd import SmtpServer

_DATE = re.compile(rb"^Date: [^\r\n]*\r?\n", re.MULTILINE)


def _without_date(data: bytes) -> bytes:
    """The message minus its Date header, the one line a dry run cannot know in advance."""
    head, sep, body = data.partition(b"\r\n\r\n")
    return _DATE.sub(b"", head, count=1) + sep + body


def test_dry_run_shows_what_run_sends_and_a_second_run_sends_nothing(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sqlite_url: str,
    sample_data: Path,
    tmp_path: Path,
) -> None:
    handler = ScriptedHandler()
    server = smtp_server(handler)
    site = make_site(sqlite_url)
    assert site.cli("db", "init").returncode == 0
    imported = site.cli("db", "import", str(sample_data))
    assert imported.returncode == 0, imported.stderr

    out = tmp_path / "dry"
    dry = site.cli("dry-run", "--campaign", "maintenance-notice", "--as-of", "2026-12-01",
                   "--out", str(out))  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert handler.bodies == [] and handler.connections == 0  # a dry run sends nothing

    first = site.cli(*site.run_args(), server=server)
    assert first.returncode == 0, first.stderr
    assert len(handler.messages) == 150

    # the dry run's Message-IDs are the run's, delivery by delivery (same run key)
    dry_ids = {
        row["delivery_email"]: row["message_id"]
        for row in read_csv(out / "audit.csv")
        if row["decision"] == "send"
    }
    sent_ids = {m.rcpt_tos[0]: m.message_id for m in handler.messages}
    assert sent_ids == dry_ids
    # and so are the messages, byte for byte but for the Date header
    dry_messages = sorted(_without_date(p.read_bytes()) for p in (out / "messages").glob("*.eml"))
    assert dry_messages == sorted(_without_date(m.data) for m in handler.messages)
    for m in handler.messages[:3]:  # the Date header really is the only line removed
        parsed = email.message_from_bytes(m.data, policy=email.policy.default)
        assert parsed["Date"] is not None

    connections = handler.connections
    second = site.cli(*site.run_args(), server=server)
    assert second.returncode == 0, second.stderr
    assert "resumed" in second.stdout
    assert "sent 0," in second.stdout
    assert len(handler.bodies) == 150  # §7: never resend a sent delivery
    assert handler.connections == connections  # nothing to send: not even a connection
    assert set(received_per_address(handler.bodies).values()) == {1}

    status = site.cli("status", "--run", RUN_ID)
    assert status.returncode == 0, status.stderr
    assert "sent 150" in status.stdout
