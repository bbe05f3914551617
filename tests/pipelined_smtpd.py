"""A tiny SMTP server that offers PIPELINING, with replies scripted per message, for tests.

aiosmtpd does not offer PIPELINING, and smtp-sink rejects only with pipelining turned off, so
the exact faults inside a pipelined group are injected here: a refused RCPT followed by the 554
to DATA, a 4xx to MAIL (the group's RCPT and DATA then get 503), a hang-up after a message's end
of data. It speaks just enough SMTP for the pool: EHLO, STARTTLS, MAIL, RCPT, DATA, RSET, QUIT.

Two observations make pipelining visible without timing anything:
- `hold_end`: the reply to a message's end of data is held until the client's next command
  arrives (or `hold_end` seconds pass). A pipelining client has already written the next MAIL
  with the body, so the hold ends at once and `grouped` counts it; a client that waits for the
  reply first would make every hold run out.
- `hold_each` (for a relay without PIPELINING): every reply is held the same way; a command that
  arrives while its predecessor is unanswered is counted in `early` (it must stay 0).

    server = PipelinedServer(Script(rcpt={"gone@example.jp": "550 5.1.1 user unknown"}))
    async with server:
        ...  # connect to server.host, server.port
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["DROP", "STALL", "Log", "PipelinedServer", "Script"]

DROP = "DROP"  # hang up instead of replying
STALL = "STALL"  # never reply (the client's timeout must end it)
OK = b"250 2.0.0 Ok\r\n"


@dataclass
class Script:
    """Replies by message number (0-based, counted over the server's life) or by address."""

    mail: dict[int, str] = field(default_factory=dict)
    rcpt: dict[str, str] = field(default_factory=dict)
    end: dict[int, str] = field(default_factory=dict)  # reply to "." (or DROP)
    data_without_rcpt: str = "554 5.5.1 Error: no valid recipients"
    pipelining: bool = True
    hold_end: float = 0.0
    hold_each: float = 0.0
    tls: ssl.SSLContext | None = None  # offer STARTTLS with this server context


@dataclass
class Log:
    """What the server saw."""

    lines: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # accepted messages, dot-unstuffed
    connections: int = 0
    grouped: int = 0  # end-of-data replies whose next command had already arrived
    early: int = 0  # commands that arrived before the previous command's reply
    tls_sessions: int = 0

    def verbs(self) -> list[str]:
        return [line[:4].decode().upper() for line in self.lines]


class _Session:
    def __init__(
        self,
        server: PipelinedServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.script = server.script
        self.log = server.log
        self.reader = reader
        self.writer = writer
        self.pushed: bytes | None = None
        self.in_mail = False
        self.rcpts = 0

    async def line(self) -> bytes:
        if self.pushed is not None:
            line, self.pushed = self.pushed, None
            return line
        return await self.reader.readline()

    async def held(self, seconds: float) -> bool:
        """Wait up to `seconds` for the client's next line; True when it came meanwhile."""
        if self.pushed is not None:
            return True
        try:
            line = await asyncio.wait_for(self.reader.readline(), seconds)
        except TimeoutError:
            return False
        self.pushed = line
        return bool(line)

    async def reply(self, text: bytes) -> None:
        if self.script.hold_each and await self.held(self.script.hold_each):
            self.log.early += 1
        self.writer.write(text)
        await self.writer.drain()

    async def run(self) -> None:
        self.log.connections += 1
        await self.reply(b"220 pipelined-test ESMTP\r\n")
        while line := await self.line():
            self.log.lines.append(line)
            verb = line[:4].upper()
            if verb == b"EHLO":
                offers = [b"pipelined-test", b"SIZE 10240000", b"8BITMIME"]
                offers += [b"ENHANCEDSTATUSCODES"]
                if self.script.pipelining:
                    offers.append(b"PIPELINING")
                if self.script.tls is not None and self.writer.get_extra_info("sslcontext") is None:
                    offers.append(b"STARTTLS")
                text = b"".join(b"250-" + o + b"\r\n" for o in offers[:-1])
                await self.reply(text + b"250 " + offers[-1] + b"\r\n")
            elif verb == b"STAR" and self.script.tls is not None:
                await self.reply(b"220 2.0.0 Ready to start TLS\r\n")
                await self.writer.start_tls(self.script.tls)
                self.log.tls_sessions += 1
            elif verb == b"MAIL":
                number = self.server.mails
                self.server.mails += 1
                text = self.script.mail.get(number, "250 2.1.0 Ok")
                if not await self.answer(text):
                    return
                self.in_mail = text.startswith("250")
                self.rcpts = 0
            elif verb == b"RCPT":
                address = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                if not self.in_mail:
                    text = "503 5.5.1 Error: need MAIL command"
                else:
                    text = self.script.rcpt.get(address, "250 2.1.5 Ok")
                if not await self.answer(text):
                    return
                self.rcpts += text.startswith("250")
            elif verb == b"DATA":
                if not self.in_mail:
                    text = "503 5.5.1 Error: need RCPT command"
                elif not self.rcpts:
                    text = self.script.data_without_rcpt
                else:
                    text = "354 End data with <CR><LF>.<CR><LF>"
                if not await self.answer(text):
                    return
                if text.startswith("354") and not await self.body():
                    return
            elif verb == b"RSET":
                self.in_mail = False
                await self.reply(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                await self.reply(b"221 2.0.0 Bye\r\n")
                break
            else:
                await self.reply(b"502 5.5.2 Error: command not recognized\r\n")
        self.writer.close()

    async def answer(self, text: str) -> bool:
        if text == DROP:
            self.writer.transport.abort()
            return False
        await self.reply(text.encode() + b"\r\n")
        return True

    async def body(self) -> bool:
        lines: list[bytes] = []
        while (line := await self.line()) != b".\r\n":
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            lines.append(line[1:] if line.startswith(b".") else line)  # dot-unstuffing
        self.log.lines.append(b".\r\n")
        number = self.server.ends
        self.server.ends += 1
        text = self.script.end.get(number, "250 2.0.0 Ok: queued")
        if text == DROP:
            self.writer.transport.abort()
            return False
        if text == STALL:
            await asyncio.Event().wait()  # until the client hangs up (the session is cancelled)
        if self.script.hold_end and await self.held(self.script.hold_end):
            self.log.grouped += 1
        if text.startswith("250") and self.rcpts:
            self.log.bodies.append(b"".join(lines))
        self.in_mail = False
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()
        return True


class PipelinedServer:
    """The scripted server on 127.0.0.1, port 0, in the test's own event loop."""

    def __init__(self, script: Script | None = None, *, ssl_context: ssl.SSLContext | None = None):
        self.script = script or Script()
        self.log = Log()
        self.host = "127.0.0.1"
        self.port = 0
        self.mails = 0
        self.ends = 0
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def say_to_all(self, line: bytes) -> None:
        """Write `line` to every open session unasked, and wait until the clients have it."""
        for writer in self._writers:
            writer.write(line)
            await writer.drain()
        await asyncio.sleep(0.05)  # let the client's loop read it (same event loop)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        try:
            await _Session(self, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def __aenter__(self) -> PipelinedServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
