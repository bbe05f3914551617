"""The demo sink: messages sent through the pool land in a Maildir; the CLI stops on SIGTERM."""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
import os
import signal
import smtplib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.config.settings import SmtpSettings
from jobs.smtp import Envelope, Outcome, SmtpPool
from tools.sink import serve_sink

REPO = Path(__file__).resolve().parents[2]
MakeEnvelope = Callable[..., Envelope]


def stored(maildir: Path) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(maildir, create=False)
    return [
        email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        for key in box.iterkeys()
    ]


async def test_sink_stores_each_message_with_its_envelope(
    maildir: Path, make_envelope: MakeEnvelope
) -> None:
    envelopes = [make_envelope(f"user{i}@example.jp") for i in range(20)]
    async with serve_sink("127.0.0.1", 0, maildir) as (server, handler):
        port = server.sockets[0].getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, connections=4)
        async with SmtpPool(settings, None) as pool:
            results = await asyncio.gather(*(pool.send(e) for e in envelopes))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert handler.count == 20
    messages = stored(maildir)
    assert sorted(m["Message-ID"] for m in messages) == sorted(e.message_id for e in envelopes)
    for message in messages:
        assert message["Delivered-To"] == message["To"]
        assert message["Return-Path"] == f"<{envelopes[0].sender}>"


@pytest.mark.slow
def test_sink_command_listens_and_stops_on_sigterm(tmp_path: Path) -> None:
    maildir = tmp_path / "demo" / "maildir"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.sink", "--port", "0", "--maildir", str(maildir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:")
        port = int(first.split(":")[1].split(",")[0])
        # The stdlib client: the sink must serve any client, not only ours.
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("a@example.jp", ["b@example.jp"], b"Subject: hi\r\n\r\nbody\r\n")
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "stopped after 1 messages" in out
    assert [m["Subject"] for m in stored(maildir)] == ["hi"]
