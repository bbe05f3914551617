"""Fixtures for the SMTP layer: real aiosmtpd servers (tests/smtpd.py), settings, envelopes."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.config.settings import SmtpSettings
from jobs.smtp import Envelope
from tests.smtpd import RecordingHandler, SmtpServer, TlsFiles, tls_files

SENDER = "info@smileworks.example.jp"
# Longer than 78 columns and unfolded: it must reach the server exactly like this.
LONG_SUBJECT = "Subject: =?utf-8?b?" + "44GK55+l44KJ44Gb" * 8 + "?="

_ids = itertools.count(1)


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """Start servers with `smtp_server(handler, **aiosmtpd_kwargs)`; all stop after the test."""
    servers: list[SmtpServer] = []

    def start(handler: RecordingHandler | None = None, **kwargs: Any) -> SmtpServer:
        server = SmtpServer(handler, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port where nothing listens: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A trustme CA and a server certificate for 127.0.0.1, shared by the session."""
    return tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_settings() -> Callable[..., SmtpSettings]:
    """Settings pointing at a test server, with tiny timeouts and backoff."""

    def build(server: SmtpServer, **overrides: Any) -> SmtpSettings:
        base: dict[str, Any] = {
            "host": server.host,
            "port": server.port,
            "connections": 1,
            "timeout_seconds": 5.0,
            "max_attempts": 3,
            "backoff_initial_seconds": 0.01,
            "backoff_max_seconds": 0.02,
        }
        return SmtpSettings(**{**base, **overrides})  # validated, like settings from a file

    return build


def message_bytes(message_id: str, to: str) -> bytes:
    lines = [
        f"From: SmileWorks <{SENDER}>",
        f"To: {to}",
        LONG_SUBJECT,
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "メンテナンスのお知らせです。",
        ".a line that starts with a dot",
        "",
    ]
    return "\r\n".join(lines).encode()


@pytest.fixture
def make_envelope() -> Callable[..., Envelope]:
    """`make_envelope("a@example.jp", ...)`: one message, a fresh Message-ID each call."""

    def build(*recipients: str) -> Envelope:
        recipients = recipients or ("taro@example.jp",)
        number = next(_ids)
        message_id = f"<test-{number}@mailer.test.invalid>"
        return Envelope(
            sender=SENDER,
            recipients=recipients,
            data=message_bytes(message_id, ", ".join(recipients)),
            message_id=message_id,
            key=f"delivery-{number}",
        )

    return build


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "maildir"
