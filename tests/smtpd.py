"""Real SMTP servers for tests: aiosmtpd on 127.0.0.1, port 0, failures injected on the server.

The client is never mocked (STYLE "Tests"). A `RecordingHandler` stores what arrives and can be
scripted per command: each script is a reply that always applies, or a list of replies used in
turn (then the server accepts). A reply is an SMTP reply line, `DROP` (close the connection
instead of answering) or `Stall(seconds)` (answer late).

    handler = RecordingHandler(rcpt={"gone@example.jp": "550 5.1.1 no such user"})
    with SmtpServer(handler) as server:
        ...  # connect to server.host, server.port

`SmtpServer` runs in its own thread with its own event loop, so it serves async tests and
synchronous ones (CliRunner, subprocesses) alike. `tls_files` mints a throwaway CA with trustme.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "DROP",
    "Credentials",
    "Drop",
    "Received",
    "RecordingHandler",
    "Reply",
    "SmtpServer",
    "Stall",
    "TlsFiles",
    "tls_files",
]

HOST = "127.0.0.1"
OK = "250 2.0.0 OK"


@dataclass(frozen=True)
class Drop:
    """Close the connection instead of replying."""


@dataclass(frozen=True)
class Stall:
    """Wait `seconds`, then reply `reply`."""

    seconds: float
    reply: str = OK


DROP = Drop()
Reply = str | Drop | Stall
Script = Reply | Sequence[Reply]


@dataclass(frozen=True)
class Received:
    """One DATA body as the server got it, with the envelope it came in."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    accepted: bool
    mail_options: tuple[str, ...] = ()

    @property
    def message_id(self) -> str:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        return str(parsed["Message-ID"])


@dataclass
class RecordingHandler:
    """Records sessions and messages; replies as scripted, otherwise accepts.

    `rcpt` is keyed by recipient address (a key "*" applies to any address without its own).
    `bodies` holds every DATA body that reached the server, accepted or not; `messages` only
    the accepted ones.
    """

    mail: Script = ()
    rcpt: dict[str, Script] = field(default_factory=dict)
    data: Script = ()
    bodies: list[Received] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    logins: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, login)
    _used: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[Received]:
        return [b for b in self.bodies if b.accepted]

    def _next(self, name: str, script: Script) -> Reply | None:
        if isinstance(script, (str, Drop, Stall)):
            return script
        with self._lock:
            index = self._used[name]
            self._used[name] += 1
        return script[index] if index < len(script) else None

    async def _answer(self, server: SMTP, reply: Reply | None) -> str:
        if reply is None:
            return OK
        if isinstance(reply, Drop):
            assert server.transport is not None
            server.transport.close()
            await asyncio.Event().wait()  # connection_lost cancels this session's task
        if isinstance(reply, Stall):
            await asyncio.sleep(reply.seconds)
            return reply.reply
        assert isinstance(reply, str)
        return reply

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.commands["MAIL"] += 1
        status = await self._answer(server, self._next("MAIL", self.mail))
        if status.startswith("250"):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return status

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.commands["RCPT"] += 1
        key = address if address in self.rcpt else "*"
        script = self.rcpt.get(key, ())
        status = await self._answer(server, self._next(f"RCPT {key}", script))
        if status.startswith("250"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return status

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands["DATA"] += 1
        received = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or b""),
            accepted=False,
            mail_options=tuple(envelope.mail_options),
        )
        index = len(self.bodies)
        self.bodies.append(received)  # the body arrived, whatever the reply will be
        status = await self._answer(server, self._data_reply(received))
        if status.startswith("250"):
            self.bodies[index] = replace(received, accepted=True)
        return status

    def _data_reply(self, received: Received) -> Reply | None:
        """The scripted reply to this body; subclasses may choose per recipient."""
        return self._next("DATA", self.data)

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands["RSET"] += 1
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands["QUIT"] += 1
        return "221 Bye"


@dataclass(frozen=True)
class Credentials:
    """An aiosmtpd authenticator accepting one login/password pair; it records each try."""

    handler: RecordingHandler
    login: str
    password: str

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = data.login.decode()
        self.handler.logins.append((mechanism, login))
        ok = login == self.login and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class SmtpServer:
    """An aiosmtpd server in a background thread on 127.0.0.1, on a free port.

    `ssl_context` makes it implicit TLS; other keyword arguments go to `aiosmtpd.smtp.SMTP`
    (tls_context for STARTTLS, require_starttls, authenticator, auth_require_tls, ...).
    """

    def __init__(
        self,
        handler: RecordingHandler | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        **smtp_kwargs: Any,
    ) -> None:
        self.handler = handler if handler is not None else RecordingHandler()
        self.host = HOST
        self.port = 0
        self._ssl_context = ssl_context
        self._smtp_kwargs = {"hostname": "swmail-test", "enable_SMTPUTF8": True, **smtp_kwargs}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._sessions: list[SMTP] = []

    def _factory(self) -> SMTP:
        assert self._loop is not None
        self.handler.connections += 1
        session = SMTP(self.handler, loop=self._loop, **self._smtp_kwargs)
        self._sessions.append(session)
        return session

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(self._factory, host=self.host, port=0, ssl=self._ssl_context)
            )
        except BaseException as exc:  # reported to the starting thread, which re-raises it
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        server.close()
        for session in self._sessions:
            if session.transport is not None:
                session.transport.close()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(server.wait_closed())
        loop.close()

    def start(self) -> SmtpServer:
        self._thread = threading.Thread(target=self._run, name="smtpd", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the test SMTP server did not start within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class TlsFiles:
    """A server context holding a certificate for 127.0.0.1/localhost, and its CA as a file."""

    server_context: ssl.SSLContext
    ca_file: Path


def tls_files(
    folder: Path,
    ca: trustme.CA | None = None,
    names: Sequence[str] = ("127.0.0.1", "localhost"),
) -> TlsFiles:
    """Mint (or reuse) a throwaway CA, issue a certificate for `names`, write the CA to `folder`."""
    ca = ca if ca is not None else trustme.CA()
    certificate = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    ca_file = folder / "smtp-test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(context, ca_file)
