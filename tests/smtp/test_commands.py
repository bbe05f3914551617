"""The pool's MAIL and RCPT commands are byte for byte those of aiosmtplib's `mail` and `rcpt`.

The pool writes MAIL/RCPT itself for plain addresses (skipping aiosmtplib's per-command address
parse); these tests hold it to what aiosmtplib would have written, on a real socket: a minimal
SMTP responder records every line the client sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiosmtplib
import pytest
from aiosmtplib.email import quote_address
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.config.settings import SmtpSettings
from jobs.smtp import Envelope, Outcome, SmtpPool
from jobs.smtp.envelope import crlf, wire_body
from jobs.smtp.transaction import _PLAIN_ADDRESS

SENDER = "info@smileworks.example.jp"
DATA = b"Subject: x\r\n\r\n.leading dot\r\nbody\r\n"


@dataclass
class Recorder:
    """What a raw SMTP responder received: command lines and DATA payloads, as bytes."""

    lines: list[bytes] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    rcpt_reply: bytes = b"250 2.1.5 OK"

    def commands(self, verb: bytes) -> list[bytes]:
        return [line for line in self.lines if line.upper().startswith(verb)]


async def _serve(
    recorder: Recorder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    writer.write(b"220 raw ESMTP\r\n")
    while line := await reader.readline():
        recorder.lines.append(line)
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-raw\r\n250-SIZE 10000000\r\n250 8BITMIME\r\n")
        elif verb == b"RCPT":
            writer.write(recorder.rcpt_reply + b"\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            payload = await reader.readuntil(b"\r\n.\r\n")
            recorder.payloads.append(payload)
            writer.write(b"250 2.0.0 queued\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:  # MAIL, RSET, NOOP
            writer.write(b"250 OK\r\n")
        await writer.drain()
    writer.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[tuple[Recorder, int]]:
    recorder = Recorder()
    server = await asyncio.start_server(lambda r, w: _serve(recorder, r, w), "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    async with server:
        yield recorder, port


def _settings(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, connections=1, timeout_seconds=5)


async def _library_commands(port: int, sender: str, recipient: str, size: int) -> Recorder:
    """What aiosmtplib's own `mail` and `rcpt` write for the same envelope."""
    recorder = Recorder()
    server = await asyncio.start_server(lambda r, w: _serve(recorder, r, w), "127.0.0.1", 0)
    async with server:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=server.sockets[0].getsockname()[1], local_hostname="t"
        )
        await client.connect()
        await client.ehlo()
        await client.mail(sender, options=[f"SIZE={size}"])
        await client.rcpt(recipient)
        await client.quit()
    return recorder


@pytest.mark.parametrize(
    "recipient",
    [
        "makoto.saito@example.co.jp",
        "a+tag!#$%&'*/=?^_`{|}~-@sub-domain.example.jp",
        '"john doe"@example.jp',  # not plain: aiosmtplib parses it, as before
        "(comment)taro@example.jp",
    ],
)
async def test_mail_and_rcpt_lines_are_aiosmtplib_s(
    raw_server: tuple[Recorder, int], recipient: str
) -> None:
    recorder, port = raw_server
    envelope = Envelope(SENDER, (recipient,), DATA, "<m@x>", "k")

    async with SmtpPool(_settings(port), None, local_hostname="t") as pool:
        result = await pool.send(envelope)

    assert result.outcome is Outcome.SENT
    expected = await _library_commands(port, SENDER, recipient, len(crlf(DATA)))
    assert recorder.commands(b"MAIL") == expected.commands(b"MAIL")
    assert recorder.commands(b"RCPT") == expected.commands(b"RCPT")
    assert recorder.payloads == [wire_body(DATA)]


async def test_refused_recipient_keeps_its_reply(raw_server: tuple[Recorder, int]) -> None:
    recorder, port = raw_server
    recorder.rcpt_reply = b"550 5.1.1 no such user"
    envelope = Envelope(SENDER, ("gone@example.jp",), DATA, "<m@x>", "k")
    following = Envelope(SENDER, ("next@example.jp",), DATA, "<n@x>", "n")

    async with SmtpPool(_settings(port), None, local_hostname="t") as pool:
        result = await pool.send(envelope)
        await pool.send(following)

    assert (result.outcome, result.code) == (Outcome.PERMANENT, 550)
    assert result.recipients[0].hard_bounce
    assert recorder.commands(b"DATA") == []
    # The refused transaction is reset before the next one starts, on the same connection.
    verbs = [line[:4] for line in recorder.lines if line[:4] in (b"MAIL", b"RSET")]
    assert verbs == [b"MAIL", b"RSET", b"MAIL"]


@settings(max_examples=300)
@given(st.from_regex(_PLAIN_ADDRESS, fullmatch=True))
def test_plain_addresses_are_what_aiosmtplib_would_quote(address: str) -> None:
    # The condition under which the pool writes the address itself.
    assert quote_address(address) == f"<{address}>"


async def test_crlf_form_bytes_go_out_as_they_are(raw_server: tuple[Recorder, int]) -> None:
    recorder, port = raw_server
    envelope = Envelope(SENDER, ("taro@example.jp",), DATA, "<m@x>", "k", crlf_form=True)

    async with SmtpPool(_settings(port), None, local_hostname="t") as pool:
        result = await pool.send(envelope)

    assert result.outcome is Outcome.SENT
    assert recorder.payloads == [wire_body(DATA)]
    assert recorder.commands(b"MAIL")[0].endswith(b" SIZE=%d\r\n" % len(DATA))
