"""A local SMTP sink for `make demo` and end-to-end tests: every message lands in a Maildir.

    python -m tools.sink --port 2525 --maildir var/demo/maildir

It accepts everything, speaks plain SMTP on loopback, and stops cleanly on SIGTERM/SIGINT.
Each message is stored as received, preceded by the `Return-Path` and `Delivered-To` lines an
MDA would add, so that the envelope can be checked against the headers.
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["MaildirHandler", "main", "run_sink", "serve_sink"]


class MaildirHandler:
    """aiosmtpd handler that files each accepted message into a Maildir."""

    def __init__(self, maildir: Path) -> None:
        maildir.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(maildir, create=True)
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        trace = f"Return-Path: <{envelope.mail_from}>\n".encode()
        trace += b"".join(f"Delivered-To: {rcpt}\n".encode() for rcpt in envelope.rcpt_tos)
        # Maildir files use the local line ending; the body is otherwise kept byte for byte.
        self.maildir.add(trace + content.replace(b"\r\n", b"\n"))
        self.count += 1
        return "250 2.0.0 OK stored"


@asynccontextmanager
async def serve_sink(
    host: str, port: int, maildir: Path
) -> AsyncIterator[tuple[asyncio.Server, MaildirHandler]]:
    """Listen on host:port (0: any free port) while the context is open."""
    handler = MaildirHandler(maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="swmail-sink", enable_SMTPUTF8=True, loop=loop),
        host=host,
        port=port,
    )
    try:
        yield server, handler
    finally:
        server.close()
        await server.wait_closed()


async def run_sink(host: str, port: int, maildir: Path) -> int:
    """Serve until SIGTERM or SIGINT; return how many messages were stored."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve_sink(host, port, maildir) as (server, handler):
        bound = server.sockets[0].getsockname()
        print(f"listening on {bound[0]}:{bound[1]}, writing to {maildir}", flush=True)
        await stop.wait()
    print(f"stopped after {handler.count} messages", flush=True)
    return handler.count


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.sink`."""
    parser = argparse.ArgumentParser(prog="python -m tools.sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, default=Path("var/demo/maildir"))
    args = parser.parse_args(argv)
    asyncio.run(run_sink(args.host, args.port, args.maildir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
