"""A pool of persistent SMTP connections (SPEC §7, §9 PIPELINING), implementing `Transport`.

`send` queues the envelope and waits for its result; up to `smtp.connections` connections take
envelopes from the one queue, each driven by its own task, opened lazily (a connection starts
when an envelope waits and no connection is free) and kept while healthy.

With a relay that offers PIPELINING (RFC 2920) a connection keeps two messages in flight: the
end of message n travels in one write with MAIL, RCPT and DATA of message n+1, and one read
brings the reply to n's end of data, then n+1's replies up to its 354. A steady stream thus
costs one round trip per message instead of four. Callers therefore get the most out of the
pool with `concurrency` sends outstanding (several per connection). Without PIPELINING every
command waits for its reply, as RFC 5321 requires.

Every reply is read by `Transaction` and classified on its own. When the connection fails in
the middle, each message in flight gets the failure at the phase it had reached: only one whose
end of data was written has an unknown outcome (`after_data`), the others are plain transient
failures. A message that was refused before its body (RSET follows, in a round trip of its own),
or whose connection is lost, never holds up the queue: the next one goes on this connection or
a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from dataclasses import dataclass
from types import TracebackType

import aiosmtplib

from jobs.config.settings import SmtpSettings
from jobs.i18n import _, tr
from jobs.smtp.classify import Verdict
from jobs.smtp.envelope import Envelope, Phase, SendResult, dot_stuffed
from jobs.smtp.errors import SmtpSetupError
from jobs.smtp.rate import RateLimiter
from jobs.smtp.session import Session, open_session
from jobs.smtp.tls import client_tls_context
from jobs.smtp.transaction import DATA, Next, Transaction
from jobs.smtp.transport import NotSent

__all__ = ["SmtpPool", "check_relay_settings", "relay_password"]

log = logging.getLogger(__name__)

_QUIT_TIMEOUT = 5.0
_OK = 250
_END_ONLY = b".\r\n"  # RFC 2920 §3.1: a 354 without an accepted recipient ends with a lone dot
# Sends outstanding per connection that keep a pipelining connection busy: the message whose
# body goes next, the one whose commands go with it, and one waiting in the queue meanwhile.
_PER_CONNECTION = 4


def relay_password(settings: SmtpSettings) -> str | None:
    """The AUTH password (None without `smtp.username`); unset or empty is a ConfigError."""
    password = settings.password()
    if settings.username and not password:
        raise SmtpSetupError(
            tr(
                "smtp.password_env names {password_env!r}, which is empty in the environment",
                password_env=settings.password_env,
            )
        )
    return password


def check_relay_settings(settings: SmtpSettings) -> None:
    """Everything about the relay settings that can fail without connecting (exit 2).

    The password variable and the CA file: `run` calls this before it freezes a run, so a
    setting that would stop the first connection changes nothing in the ledger.
    """
    relay_password(settings)
    client_tls_context(settings)


@dataclass(slots=True, eq=False)
class _Job:
    """One `send` call: its envelope, the caller's future, and its attempt on a connection."""

    envelope: Envelope
    future: asyncio.Future[SendResult]
    txn: Transaction | None = None
    body: bytes = b""  # what goes after the 354: the dot-stuffed message, or a lone dot
    after_idle: bool = False  # written first on a used connection that had sat idle
    reopened: bool = False  # its one free reconnect is spent
    written: bool = False  # some of its commands were handed to a connection's transport

    def settle(self, result: SendResult) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def refuse(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class SmtpPool:
    """`Transport` over up to `settings.connections` persistent sessions with the relay.

    Use as an async context manager; `send` is one attempt (retries are `send_with_retry`'s).
    Only configuration problems raise (`SmtpSetupError`); every other failure is a `SendResult`.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        password: str | None,
        *,
        limiter: RateLimiter | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if settings.username and password is None:
            raise SmtpSetupError(_("smtp: smtp.username is set but no password was provided"))
        self._settings = settings
        self._password = password
        self._tls = client_tls_context(settings)
        self.server = f"{settings.host}:{settings.port}"
        self._limiter = limiter or RateLimiter(settings.rate_per_second)
        self._local_hostname = local_hostname
        self._queue: deque[_Job] = deque()
        self._idle: deque[asyncio.Future[_Job | None]] = deque()  # connections waiting for work
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._closed = False
        # Until one AUTH succeeded, sessions open one at a time and a refusal is remembered:
        # the password crosses the wire at most once when it is wrong, whatever `connections`.
        self._auth_gate = asyncio.Lock()
        self._authenticated = not settings.username
        self._setup_refused: SmtpSetupError | None = None
        # observable, for tests and benchmarks
        self.sessions_opened = 0  # how often the pool had to (re)connect
        self.round_trips = 0  # writes that waited for replies before the next write

    @property
    def concurrency(self) -> int:
        """How many `send` calls outstanding keep every connection busy (`Transport`)."""
        return self._settings.connections * _PER_CONNECTION

    @classmethod
    def from_settings(cls, settings: SmtpSettings) -> SmtpPool:
        """A pool whose AUTH password comes from the variable named by `smtp.password_env`."""
        return cls(settings, relay_password(settings))

    async def __aenter__(self) -> SmtpPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, envelope: Envelope) -> SendResult:
        """One delivery attempt over a pooled connection."""
        if self._closed:
            raise RuntimeError("SmtpPool.send after close")
        job = _Job(envelope, asyncio.get_running_loop().create_future())
        self._put(job)
        try:
            return await job.future
        except asyncio.CancelledError:
            if not job.written:
                raise NotSent() from None
            raise

    async def close(self) -> None:
        """QUIT every idle connection; a connection still carrying messages is dropped."""
        self._closed = True
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
        for task, connection in self._connections.items():
            if connection.busy:
                task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        while self._queue:
            self._queue.popleft().future.cancel()

    # the queue shared by the connections

    def _put(self, job: _Job, *, first: bool = False) -> None:
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(job)
                return
        if first:
            self._queue.appendleft(job)
        else:
            self._queue.append(job)
        self._start_connection()

    def _start_connection(self) -> None:
        """One more connection when envelopes wait, none is free and the pool is not full."""
        if self._queue and not self._closed and len(self._connections) < self._settings.connections:
            connection = _Connection(self)
            task = asyncio.get_running_loop().create_task(connection.run(), name="smtp-connection")
            self._connections[task] = connection
            task.add_done_callback(self._connection_done)

    def _connection_done(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            # a bug: the messages it carried were failed with it; the next send opens another
            log.error("SMTP connection task failed", exc_info=task.exception())
        self._start_connection()  # what it left in the queue still gets a connection

    def _take_nowait(self) -> _Job | None:
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():  # else its caller stopped waiting (cancelled)
                return job
        return None

    async def _take(self, connection: _Connection) -> _Job | None:
        """The next envelope; waits while there is none. None: the pool is closing."""
        job = self._take_nowait()
        if job is not None or self._closed:
            return job
        waiter: asyncio.Future[_Job | None] = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        connection.busy = False
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and (job := waiter.result()) is not None:
                self._put(job, first=True)  # handed over just as this connection was stopped
            raise
        finally:
            connection.busy = True

    async def _hostname(self) -> str:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def _open(self) -> Session | Verdict:
        """Connect, STARTTLS and AUTH as configured; a transient failure comes back as a Verdict."""
        if self._authenticated:
            return await self._open_session()
        async with self._auth_gate:
            if self._setup_refused is not None:
                raise SmtpSetupError(self._setup_refused.message)
            try:
                opened = await self._open_session()
            except SmtpSetupError as exc:
                self._setup_refused = exc
                raise
            self._authenticated = isinstance(opened, Session)
            return opened

    async def _open_session(self) -> Session | Verdict:
        session = await open_session(
            self._settings, self._password, self._tls, await self._hostname()
        )
        if isinstance(session, Session):
            self.sessions_opened += 1
        return session


class _Connection:
    """One session with the relay and the task that drives it: envelopes in, results out.

    Its state is in fields a test can read: the open session, the message whose body goes
    next (`carry`), and whether the last transaction was refused before its body (`reset`).
    """

    def __init__(self, pool: SmtpPool) -> None:
        self.pool = pool
        self.session: Session | None = None
        self.used = False  # the session has carried at least one round trip
        self.carry: _Job | None = None  # got its 354; its body goes in the next write
        self.reset = False  # RSET before the next MAIL
        self.busy = True
        self.in_flight: list[_Job] = []

    async def run(self) -> None:
        try:
            while True:
                if self.carry is None:
                    job = await self.pool._take(self)
                    if job is None:
                        break
                else:
                    job = self.pool._take_nowait()
                await self._step(job)
        except BaseException as exc:
            for job in self.in_flight:
                if isinstance(exc, Exception):
                    job.refuse(exc)  # a bug: the caller sees it instead of waiting forever
                else:
                    job.future.cancel()
            self._discard()
            raise
        await self._quit()

    async def _step(self, job: _Job | None) -> None:
        """One round trip: the carried body (if any) and the next envelope's commands (if any)."""
        pool = self.pool
        self.in_flight = [j for j in (self.carry, job) if j is not None]
        if self.carry is None:
            assert job is not None
            if not await self._ready(job):
                return
            job.after_idle = self.used
        if job is not None:
            assert self.session is not None
            job.txn = Transaction.start(job.envelope, self.session.extensions, pool.server)
            if job.txn.result is not None:
                job.settle(job.txn.result)
                job = None
            elif pool._limiter.paced:
                await pool._limiter.wait()  # §7: the rate applies when a message goes out
        if job is None and self.carry is None:
            return
        assert self.session is not None
        try:
            async with asyncio.timeout(pool._settings.timeout_seconds):
                if self.session.extensions.pipelining:
                    await self._pipelined(self.session, job)
                else:
                    assert job is not None
                    await self._one_by_one(self.session, job)
        except SmtpSetupError as exc:
            for j in self.in_flight:
                j.refuse(exc)
            self._discard()
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._fail_in_flight(exc)
            self._discard()
        self.in_flight = []

    async def _ready(self, job: _Job) -> bool:
        """An open session in step for a new MAIL; False when `job` was settled instead."""
        if self.session is not None and self.session.stream.unsolicited:
            self._discard()  # the server spoke while idle (a 421 before hanging up): start anew
        if self.reset and self.session is not None and self.session.stream.is_open:
            await self._rset(self.session)
        if self.session is not None and self.session.stream.is_open:
            return True
        self._discard()
        try:
            opened = await self.pool._open()
        except SmtpSetupError as exc:
            job.refuse(exc)
            return False
        if isinstance(opened, Verdict):
            job.settle(Transaction.unsent(job.envelope, opened, self.pool.server))
            return False
        self.session = opened
        return True

    async def _pipelined(self, session: Session, job: _Job | None) -> None:
        """RFC 2920: [end of the carried message] + MAIL, RCPT..., DATA of the next, one write."""
        stream = session.stream
        carry, self.carry = self.carry, None
        parts: list[bytes] = []
        if carry is not None:
            parts.append(carry.body)
        if job is not None:
            assert job.txn is not None
            parts += (job.txn.commands, DATA)
            job.written = True
        stream.write(b"".join(parts))
        self.pool.round_trips += 1
        if carry is not None and carry.txn is not None:
            carry.txn.body_sent()
        await stream.drain()
        if carry is not None:
            assert carry.txn is not None
            reply = await stream.reply()
            if carry.txn.result is None:
                carry.settle(carry.txn.on_end(reply))
            # else it ended with a lone dot: its result (the refusals) is already given
        self.used = True
        if job is None:
            return
        txn = job.txn
        assert txn is not None
        txn.on_mail(await stream.reply())
        for address, _params in txn.rcpts:
            txn.on_rcpt(address, await stream.reply())
        self._after_data(job, txn.on_data(await stream.reply()))

    async def _one_by_one(self, session: Session, job: _Job) -> None:
        """Without PIPELINING: each command waits for its reply, and a refusal stops the rest."""
        stream = session.stream
        txn = job.txn
        assert txn is not None
        job.written = True
        stream.write(txn.mail)
        self.pool.round_trips += 1
        mail_ok = txn.on_mail(await stream.reply())
        self.used = True
        if not mail_ok:
            self._after_data(job, Next.RESET)
            return
        for address, line in txn.rcpts:
            stream.write(line)
            self.pool.round_trips += 1
            txn.on_rcpt(address, await stream.reply())
        if txn.no_recipient():
            self._after_data(job, Next.RESET)
            return
        stream.write(DATA)
        self.pool.round_trips += 1
        self._after_data(job, txn.on_data(await stream.reply()))
        carry, self.carry = self.carry, None
        if carry is None:
            return
        stream.write(carry.body)
        self.pool.round_trips += 1
        txn.body_sent()
        await stream.drain()
        reply = await stream.reply()
        if txn.result is None:
            job.settle(txn.on_end(reply))

    def _after_data(self, job: _Job, step: Next) -> None:
        txn = job.txn
        assert txn is not None
        if step is Next.BODY:
            job.body = dot_stuffed(txn.body)
            self.carry = job
            return
        assert txn.result is not None
        job.settle(txn.result)
        if step is Next.EMPTY:
            job.body = _END_ONLY
            self.carry = job
        else:
            self.reset = True

    async def _rset(self, session: Session) -> None:
        """RSET after a refused transaction; a connection that refuses it is replaced."""
        self.reset = False
        try:
            async with asyncio.timeout(self.pool._settings.timeout_seconds):
                session.stream.write(b"RSET\r\n")
                self.pool.round_trips += 1
                reply = await session.stream.reply()
        except (aiosmtplib.SMTPException, OSError):
            self._discard()
            return
        if reply.code != _OK:
            self._discard()

    def _fail_in_flight(self, error: BaseException) -> None:
        """The connection failed: each message in flight gets the failure at its own phase."""
        for job in self.in_flight:
            if job.future.done() or job.txn is None:
                continue
            txn = job.txn
            decided = txn.result is not None
            try:
                result = txn.failed(error)
            except SmtpSetupError as exc:
                job.refuse(exc)
                continue
            if (
                job.after_idle
                and not job.reopened
                and not decided  # no reply of the server decided it
                and txn.phase is Phase.MAIL
                and isinstance(error, ConnectionError)
            ):
                # A pooled connection the server had closed while idle: nothing of this message
                # reached it, so it goes again on a fresh connection instead of spending one of
                # the delivery's attempts (once, so a relay that always hangs up still fails).
                job.reopened = True
                job.txn = None
                job.written = False
                self.pool._put(job, first=True)
                continue
            job.settle(result)

    async def _quit(self) -> None:
        session, self.session = self.session, None
        if session is None or not session.stream.is_open:
            return
        try:
            async with asyncio.timeout(_QUIT_TIMEOUT):
                session.stream.write(b"QUIT\r\n")
                await session.stream.reply()
        except (aiosmtplib.SMTPException, OSError):
            pass  # the server may already have hung up; we are leaving anyway
        finally:
            session.stream.close()

    def _discard(self) -> None:
        session, self.session = self.session, None
        self.carry = None
        self.reset = False
        self.used = False
        if session is not None:
            session.stream.abort()
