"""Opening a session: connect, EHLO, STARTTLS and AUTH with aiosmtplib, then take the transport.

aiosmtplib does the setup it is good at (TLS upgrade with certificate checks, AUTH mechanisms,
the EHLO parse); the message stream then runs on our `ReplyStream`, which can read pipelined
replies. The handover relies on `SMTP.transport` being the live transport after `connect` and
`starttls`, as in the aiosmtplib versions pinned in setup.cfg; tests/smtp/test_tls_auth.py and
tests/smtp/test_pipelining.py hold it to that.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiosmtplib

from jobs.config.settings import SmtpSettings
from jobs.i18n import tr
from jobs.smtp.classify import Verdict, classify
from jobs.smtp.envelope import Phase
from jobs.smtp.errors import SmtpSetupError
from jobs.smtp.transaction import Extensions
from jobs.smtp.wire import ReplyStream

__all__ = ["Session", "open_session"]


@dataclass(frozen=True, slots=True)
class Session:
    """A ready session: EHLO done (again after STARTTLS), authenticated when configured."""

    stream: ReplyStream
    extensions: Extensions


async def open_session(
    settings: SmtpSettings,
    password: str | None,
    tls: ssl.SSLContext | None,
    local_hostname: str,
) -> Session | Verdict:
    """A session, or the transient failure that prevented it; configuration problems raise."""
    server = f"{settings.host}:{settings.port}"
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        timeout=settings.timeout_seconds,
        use_tls=settings.security == "tls",
        start_tls=False,  # STARTTLS is done below, where a missing offer is an error
        tls_context=tls,
        local_hostname=local_hostname,
    )
    phase = Phase.CONNECT
    try:
        await client.connect()
        await _ehlo(client)
        if settings.security == "starttls":
            if not client.supports_extension("starttls"):
                # §7: STARTTLS when configured, never silently skipped or downgraded.
                raise SmtpSetupError(
                    tr(
                        "smtp: security = starttls but {server} does not offer STARTTLS; refusing "
                        "to send in clear text",
                        server=server,
                    )
                )
            phase = Phase.STARTTLS
            await client.starttls()
            await _ehlo(client)  # RFC 3207: forget what was learnt before TLS
        if settings.username:
            phase = Phase.AUTH
            if not client.supports_extension("auth"):
                raise SmtpSetupError(
                    tr(
                        "smtp: smtp.username is set but {server} offers no AUTH (security = "
                        "{security})",
                        server=server,
                        security=settings.security,
                    )
                )
            await _authenticate(client, settings.username, password or "", server)
        extensions = Extensions(
            size=client.supports_extension("size"),
            eight_bit_mime=client.supports_extension("8bitmime"),
            smtputf8=client.supports_extension("smtputf8"),
            pipelining=client.supports_extension("pipelining"),
        )
        transport = client.transport
        if transport is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        stream = ReplyStream.adopt(transport)
    except SmtpSetupError:
        client.close()
        raise
    except (aiosmtplib.SMTPException, OSError) as exc:
        client.close()
        verdict = classify(exc, phase, server)
        if verdict.setup_error is not None:
            raise SmtpSetupError(verdict.setup_error) from None
        return verdict
    return Session(stream, extensions)


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
            tr(
                "smtp: {server} offers no AUTH mechanism this client speaks (offered: {shown}; "
                "supported: {value})",
                server=server,
                shown=shown,
                value=", ".join(_AUTH_METHODS),
            )
        )
    if offered[0] == "cram-md5":
        await client.auth_crammd5(username, password)
    elif offered[0] == "plain":
        await client.auth_plain(username, password)
    else:
        await client.auth_login(username, password)
