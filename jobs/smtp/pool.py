"""A pool of persistent SMTP connections (SPEC §7), implementing `Transport`.

Each connection sends many messages; the pool holds at most `smtp.connections` of them, so it
also caps how many sends run at once. A connection is opened lazily, reused while healthy, reset
(RSET) after a refused transaction, and thrown away after anything that leaves its state unknown
(a disconnect, a timeout, a protocol error); the slot then reconnects on its next use.

The transaction is driven step by step (MAIL, RCPT per recipient, DATA, body) instead of through
`sendmail`, for two reasons: each refused recipient is classified on its own, and a failure is
known to have happened before the body was sent or after it (an unknown outcome, reported as
`after_data`). The body is the envelope's bytes as flattened once by the renderer; nothing here
re-encodes or re-folds it.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass, field
from types import TracebackType

import aiosmtplib

from jobs.config.settings import SmtpSettings
from jobs.smtp.classify import Verdict, classify, one_line
from jobs.smtp.envelope import (
    Envelope,
    Outcome,
    Phase,
    RecipientResult,
    SendResult,
    crlf,
    dot_stuffed,
)
from jobs.smtp.errors import SmtpSetupError
from jobs.smtp.rate import RateLimiter
from jobs.smtp.tls import client_tls_context

__all__ = ["SmtpPool", "check_relay_settings", "relay_password"]

_QUIT_TIMEOUT = 5.0
_OK = 250
_FORWARD = 251
_START_INPUT = 354
# Inside a transaction: `_transaction`'s deadline bounds every reply, and it started first, so
# a per-command timeout (aiosmtplib's default) could never fire before it; it only cost a timer
# and an extra event-loop hop per command.
_NO_COMMAND_TIMEOUT = None
# An addr-spec that aiosmtplib's `quote_address` would return as `<addr-spec>`, unchanged: a
# dot-atom-like local part and a host name, no space, quote, bracket or comment, ASCII only.
# Checked against aiosmtplib itself by tests/smtp/test_commands.py.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def relay_password(settings: SmtpSettings) -> str | None:
    """The AUTH password (None without `smtp.username`); unset or empty is a ConfigError."""
    password = settings.password()
    if settings.username and not password:
        raise SmtpSetupError(
            f"smtp.password_env names {settings.password_env!r}, which is empty in the environment"
        )
    return password


def check_relay_settings(settings: SmtpSettings) -> None:
    """Everything about the relay settings that can fail without connecting (exit 2).

    The password variable and the CA file: `run` calls this before it freezes a run, so a
    setting that would stop the first connection changes nothing in the ledger.
    """
    relay_password(settings)
    client_tls_context(settings)


@dataclass(slots=True)
class _Slot:
    """One place in the pool; holds a live client or nothing."""

    client: aiosmtplib.SMTP | None = None
    busy: bool = False

    def discard(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


@dataclass(slots=True)
class _Progress:
    """How far one transaction got: what a failure applies to depends on it."""

    phase: Phase = Phase.MAIL
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, RecipientResult] = field(default_factory=dict)


class SmtpPool:
    """`Transport` over up to `settings.connections` persistent aiosmtplib clients.

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
            raise SmtpSetupError("smtp: smtp.username is set but no password was provided")
        self._settings = settings
        self._password = password
        self._tls = client_tls_context(settings)
        self._server = f"{settings.host}:{settings.port}"
        self._limiter = limiter or RateLimiter(settings.rate_per_second)
        self._local_hostname = local_hostname
        self._slots = [_Slot() for _ in range(settings.connections)]
        self._idle: asyncio.LifoQueue[_Slot] = asyncio.LifoQueue()
        for slot in self._slots:
            self._idle.put_nowait(slot)
        self._closed = False
        self.sessions_opened = 0  # observable: how often the pool had to (re)connect
        # Until one AUTH succeeded, sessions open one at a time and a refusal is remembered:
        # the password crosses the wire at most once when it is wrong, whatever `connections`.
        self._auth_gate = asyncio.Lock()
        self._authenticated = not settings.username
        self._setup_refused: SmtpSetupError | None = None

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

    async def close(self) -> None:
        """QUIT every idle connection; busy ones are closed when their send returns."""
        self._closed = True
        for slot in self._slots:
            if slot.busy or slot.client is None:
                continue
            client, slot.client = slot.client, None
            try:
                if client.is_connected:
                    await client.quit(timeout=_QUIT_TIMEOUT)
            except (aiosmtplib.SMTPException, OSError):
                pass  # the server may already have hung up; we are leaving anyway
            finally:
                client.close()

    async def send(self, envelope: Envelope) -> SendResult:
        """One delivery attempt over a pooled connection."""
        if self._closed:
            raise RuntimeError("SmtpPool.send after close")
        slot = await self._idle.get()
        slot.busy = True
        try:
            await self._limiter.wait()  # §7: the rate applies at send time, pool-wide
            return await self._attempt(slot, envelope)
        except BaseException:
            slot.discard()  # cancelled or a setup error: the client's state is unknown
            raise
        finally:
            slot.busy = False
            if self._closed:
                slot.discard()
            self._idle.put_nowait(slot)

    async def _attempt(self, slot: _Slot, envelope: Envelope) -> SendResult:
        if slot.client is not None and not slot.client.is_connected:
            slot.discard()
        reused = slot.client is not None
        while True:
            if slot.client is None:
                failure = await self._open(slot)
                if failure is not None:
                    return _failed(envelope, failure, _Progress(phase=failure.phase))
            result, dead_on_arrival = await self._transaction(slot, envelope)
            if not (reused and dead_on_arrival):
                return result
            # A pooled connection the server had closed while idle: nothing of this message
            # reached it, so reconnect once instead of spending one of the delivery's attempts.
            reused = False

    async def _hostname(self) -> str:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def _open(self, slot: _Slot) -> Verdict | None:
        """Connect, STARTTLS and AUTH as configured; a transient failure comes back as a Verdict."""
        if self._authenticated:
            return await self._open_session(slot)
        async with self._auth_gate:
            if self._setup_refused is not None:
                raise SmtpSetupError(self._setup_refused.message)
            try:
                failure = await self._open_session(slot)
            except SmtpSetupError as exc:
                self._setup_refused = exc
                raise
            self._authenticated = failure is None
            return failure

    async def _open_session(self, slot: _Slot) -> Verdict | None:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout_seconds,
            use_tls=settings.security == "tls",
            start_tls=False,  # STARTTLS is done below, where a missing offer is an error
            tls_context=self._tls,
            local_hostname=await self._hostname(),
        )
        phase = Phase.CONNECT
        try:
            await client.connect()
            await _ehlo(client)
            if settings.security == "starttls":
                if not client.supports_extension("starttls"):
                    # §7: STARTTLS when configured, never silently skipped or downgraded.
                    raise SmtpSetupError(
                        f"smtp: security = starttls but {self._server} does not offer"
                        " STARTTLS; refusing to send in clear text"
                    )
                phase = Phase.STARTTLS
                await client.starttls()
                await _ehlo(client)  # RFC 3207: forget what was learnt before TLS
            if settings.username:
                phase = Phase.AUTH
                if not client.supports_extension("auth"):
                    raise SmtpSetupError(
                        f"smtp: smtp.username is set but {self._server} offers no AUTH"
                        f" (security = {settings.security})"
                    )
                await _authenticate(client, settings.username, self._password or "", self._server)
        except SmtpSetupError:
            client.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            verdict = classify(exc, phase, self._server)
            if verdict.setup_error is not None:
                raise SmtpSetupError(verdict.setup_error) from None
            return verdict
        slot.client = client
        self.sessions_opened += 1
        return None

    async def _transaction(self, slot: _Slot, envelope: Envelope) -> tuple[SendResult, bool]:
        """One MAIL..DATA transaction; the flag says the connection was dead before MAIL."""
        client = slot.client
        assert client is not None
        progress = _Progress()
        try:
            # The per-send timeout bounds the whole transaction, not each command alone.
            async with asyncio.timeout(self._settings.timeout_seconds):
                result = await self._dialogue(client, envelope, progress)
        except (aiosmtplib.SMTPException, OSError) as exc:
            verdict = classify(exc, progress.phase, self._server)
            if verdict.setup_error is not None:
                slot.discard()
                raise SmtpSetupError(verdict.setup_error) from None
            if verdict.code is None:
                slot.discard()  # disconnect, timeout: the dialogue may be out of step
            else:
                await self._reset(slot)
            dead = progress.phase is Phase.MAIL and isinstance(exc, ConnectionError)
            return _failed(envelope, verdict, progress), dead
        if result.phase is not None:
            await self._reset(slot)
        return result, False

    async def _dialogue(
        self, client: aiosmtplib.SMTP, envelope: Envelope, progress: _Progress
    ) -> SendResult:
        body = crlf(envelope.data)  # once: SIZE counts it, the wire carries it dot-stuffed
        options: list[str] = []
        if client.supports_extension("size"):
            options.append(f"SIZE={len(body)}")
        if client.supports_extension("8bitmime") and not envelope.data.isascii():
            options.append("BODY=8BITMIME")
        encoding = "ascii"
        if not all(a.isascii() for a in (envelope.sender, *envelope.recipients)):
            if not client.supports_extension("smtputf8"):
                text = f"{self._server} does not support SMTPUTF8 (non-ASCII address)"
                results = tuple(
                    RecipientResult(r, Outcome.PERMANENT, None, text) for r in envelope.recipients
                )
                return SendResult.of(results, None, text, phase=Phase.MAIL)
            options.append("SMTPUTF8")
            encoding = "utf-8"

        progress.phase = Phase.MAIL
        await _mail(client, envelope.sender, options, encoding)

        progress.phase = Phase.RCPT
        for address in envelope.recipients:
            try:
                await _rcpt(client, address, encoding)
            except (aiosmtplib.SMTPRecipientRefused, ValueError) as exc:
                verdict = classify(exc, Phase.RCPT, self._server)
                progress.refused[address] = RecipientResult(
                    address, verdict.outcome, verdict.code, verdict.text, verdict.hard_bounce
                )
                if not client.is_connected:
                    # e.g. 421: the session ended, which leaves every other recipient pending.
                    raise aiosmtplib.SMTPServerDisconnected(
                        f"connection closed after RCPT reply {verdict.code}"
                    ) from exc
            else:
                progress.accepted.append(address)
        if not progress.accepted:
            first = progress.refused[envelope.recipients[0]]
            results = tuple(progress.refused[r] for r in envelope.recipients)
            return SendResult.of(results, first.code, first.text, phase=Phase.RCPT)

        progress.phase = Phase.DATA
        reply = await client.execute_command(b"DATA", timeout=_NO_COMMAND_TIMEOUT)
        if reply.code != _START_INPUT:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)

        # From here on the server may hold the message: a failure has an unknown outcome.
        progress.phase = Phase.BODY
        protocol = client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        protocol.write(dot_stuffed(body))
        reply = await protocol.read_response(timeout=_NO_COMMAND_TIMEOUT)
        if reply.code != _OK:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)

        text = one_line(reply.message)
        results = tuple(
            progress.refused.get(r) or RecipientResult(r, Outcome.SENT, reply.code, text)
            for r in envelope.recipients
        )
        return SendResult.of(results, reply.code, text)

    async def _reset(self, slot: _Slot) -> None:
        """RSET after a refused transaction so that the connection can carry the next one."""
        client = slot.client
        if client is None:
            return
        if not client.is_connected:
            slot.discard()
            return
        try:
            await client.rset()  # raises on anything but 250
        except (aiosmtplib.SMTPException, OSError):
            slot.discard()


def _plain_command(client: aiosmtplib.SMTP, address: str) -> bool:
    """MAIL/RCPT can be written directly: the session has its EHLO and the address needs no parse.

    `SMTP.mail` and `SMTP.rcpt` run the address through `email.utils.parseaddr` (about 10 µs
    each, for every message); for a plain address its result is the address itself, and being
    ASCII it is the same bytes whether the session speaks ASCII or SMTPUTF8.
    """
    return not client.is_ehlo_or_helo_needed and _PLAIN_ADDRESS.fullmatch(address) is not None


async def _mail(client: aiosmtplib.SMTP, sender: str, options: list[str], encoding: str) -> None:
    """`client.mail(...)`, the same command bytes and the same errors."""
    if not _plain_command(client, sender):
        await client.mail(sender, options=options, encoding=encoding, timeout=_NO_COMMAND_TIMEOUT)
        return
    reply = await client.execute_command(
        b"MAIL",
        b"FROM:<" + sender.encode("ascii") + b">",
        *(option.encode("ascii") for option in options),
        timeout=_NO_COMMAND_TIMEOUT,
    )
    if reply.code != _OK:
        raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)


async def _rcpt(client: aiosmtplib.SMTP, recipient: str, encoding: str) -> None:
    """`client.rcpt(...)`, the same command bytes and the same errors."""
    if not _plain_command(client, recipient):
        await client.rcpt(recipient, encoding=encoding, timeout=_NO_COMMAND_TIMEOUT)
        return
    reply = await client.execute_command(
        b"RCPT", b"TO:<" + recipient.encode("ascii") + b">", timeout=_NO_COMMAND_TIMEOUT
    )
    if reply.code not in (_OK, _FORWARD):
        raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)


async def _ehlo(client: aiosmtplib.SMTP) -> None:
    """EHLO, falling back to HELO for a server that rejects it (its extensions are then none)."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError as exc:
        if not (500 <= exc.code <= 599 and client.is_connected):
            raise
        await client.helo()


# aiosmtplib's own preference order (strongest first) and its public method for each.
_AUTH_METHODS = ("cram-md5", "plain", "login")


async def _authenticate(client: aiosmtplib.SMTP, username: str, password: str, server: str) -> None:
    """AUTH with ONE mechanism: after a 535 the password is not sent again another way.

    `SMTP.login` would try every mechanism the server offers in turn, sending the password once
    per mechanism; a relay that refused it once will refuse it again, so the retries only put
    the secret on the wire more often.
    """
    offered = [m for m in _AUTH_METHODS if m in client.server_auth_methods]
    if not offered:
        shown = ", ".join(sorted(client.server_auth_methods)) or "none"
        raise SmtpSetupError(
            f"smtp: {server} offers no AUTH mechanism this client speaks (offered: {shown};"
            f" supported: {', '.join(_AUTH_METHODS)})"
        )
    if offered[0] == "cram-md5":
        await client.auth_crammd5(username, password)
    elif offered[0] == "plain":
        await client.auth_plain(username, password)
    else:
        await client.auth_login(username, password)


def _failed(envelope: Envelope, verdict: Verdict, progress: _Progress) -> SendResult:
    """A failed transaction: recipients refused on their own keep their reply, the rest share it."""
    # A reply after DATA names no recipient: it is a hard bounce only when there was one.
    sole = len(progress.accepted) == 1 or progress.phase not in (Phase.DATA, Phase.BODY)
    bounce = verdict.hard_bounce and sole
    results = tuple(
        progress.refused.get(r)
        or RecipientResult(r, verdict.outcome, verdict.code, verdict.text, bounce)
        for r in envelope.recipients
    )
    return SendResult.of(
        results, verdict.code, verdict.text, after_data=verdict.after_data, phase=verdict.phase
    )
