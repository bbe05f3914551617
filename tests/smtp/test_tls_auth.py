"""STARTTLS, implicit TLS and AUTH against aiosmtpd with a throwaway trustme CA.

Certificates are always verified: the CA file makes the session work, its absence is a clear
setup error, and a server that does not offer STARTTLS is refused rather than used in clear.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from jobs.config.settings import SmtpSettings
from jobs.smtp import Envelope, Outcome, SmtpPool, SmtpSetupError
from tests.smtpd import Credentials, RecordingHandler, SmtpServer, TlsFiles, tls_files

Server = Callable[..., SmtpServer]
Settings = Callable[..., SmtpSettings]
MakeEnvelope = Callable[..., Envelope]

PASSWORD_ENV = "SWMAIL_TEST_SMTP_PASSWORD"


@pytest.fixture
def auth_relay(
    smtp_server: Server, smtp_settings: Settings, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[RecordingHandler, SmtpSettings]]:
    """A STARTTLS relay that accepts mailer/`right` (PLAIN and LOGIN), and settings for it."""

    def build(
        password: str,
        right: str = "right",
        excluded: tuple[str, ...] = (),
        **overrides: object,
    ) -> tuple[RecordingHandler, SmtpSettings]:
        monkeypatch.setenv(PASSWORD_ENV, password)
        handler = RecordingHandler()
        server = smtp_server(
            handler,
            tls_context=tls.server_context,
            authenticator=Credentials(handler, "mailer", right),
            auth_required=True,
            auth_exclude_mechanism=list(excluded),
        )
        settings = smtp_settings(
            server,
            security="starttls",
            ca_file=str(tls.ca_file),
            username="mailer",
            password_env=PASSWORD_ENV,
            **overrides,
        )
        return handler, settings

    return build


AuthRelay = Callable[..., tuple[RecordingHandler, SmtpSettings]]


async def test_starttls_with_the_ca_file_sends(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope, tls: TlsFiles
) -> None:
    # require_starttls: the server refuses MAIL in clear, so SENT proves the upgrade happened.
    server = smtp_server(tls_context=tls.server_context, require_starttls=True)
    settings = smtp_settings(server, security="starttls", ca_file=str(tls.ca_file))
    async with SmtpPool(settings, None) as pool:
        result = await pool.send(make_envelope())
    assert result.outcome is Outcome.SENT
    assert len(server.handler.messages) == 1


async def test_starttls_without_the_ca_is_a_certificate_error(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope, tls: TlsFiles
) -> None:
    server = smtp_server(tls_context=tls.server_context, require_starttls=True)
    settings = smtp_settings(server, security="starttls")
    async with SmtpPool(settings, None) as pool:
        with pytest.raises(SmtpSetupError) as caught:
            await pool.send(make_envelope())
    assert re.fullmatch(
        rf"smtp: certificate verify failed for 127\.0\.0\.1:{server.port} \(.+\)",
        str(caught.value),
    )
    assert caught.value.exit_code == 2
    assert server.handler.commands["MAIL"] == 0


async def test_starttls_configured_but_not_offered_is_refused(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope, tls: TlsFiles
) -> None:
    server = smtp_server()  # no tls_context: no STARTTLS in EHLO
    settings = smtp_settings(server, security="starttls", ca_file=str(tls.ca_file))
    async with SmtpPool(settings, None) as pool:
        with pytest.raises(SmtpSetupError, match="does not offer STARTTLS"):
            await pool.send(make_envelope())
    assert server.handler.commands["MAIL"] == 0  # never downgraded to clear text


async def test_implicit_tls_with_the_ca_file_sends(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope, tls: TlsFiles
) -> None:
    server = smtp_server(ssl_context=tls.server_context)
    settings = smtp_settings(server, security="tls", ca_file=str(tls.ca_file))
    async with SmtpPool(settings, None) as pool:
        result = await pool.send(make_envelope())
    assert result.outcome is Outcome.SENT


async def test_implicit_tls_without_the_ca_is_a_certificate_error(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope, tls: TlsFiles
) -> None:
    server = smtp_server(ssl_context=tls.server_context)
    settings = smtp_settings(server, security="tls")
    async with SmtpPool(settings, None) as pool:
        with pytest.raises(SmtpSetupError, match=r"^smtp: certificate verify failed for "):
            await pool.send(make_envelope())


async def test_certificate_for_another_host_is_refused(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope, tmp_path: Path
) -> None:
    # A certificate from a trusted CA, but for another name than the one we connect to.
    other = tls_files(tmp_path, names=("mail.example.invalid",))
    server = smtp_server(ssl_context=other.server_context)
    settings = smtp_settings(server, security="tls", ca_file=str(other.ca_file))
    async with SmtpPool(settings, None) as pool:
        with pytest.raises(SmtpSetupError, match=r"certificate verify failed .*mismatch"):
            await pool.send(make_envelope())


async def test_implicit_tls_against_a_plain_server_is_a_setup_error(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope, tls: TlsFiles
) -> None:
    server = smtp_server()
    settings = smtp_settings(server, security="tls", ca_file=str(tls.ca_file))
    async with SmtpPool(settings, None) as pool:
        with pytest.raises(SmtpSetupError, match=r"TLS handshake .* failed"):
            await pool.send(make_envelope())


def test_missing_ca_file_is_a_setup_error() -> None:
    settings = SmtpSettings(security="tls", ca_file="/nonexistent/ca.pem")
    with pytest.raises(SmtpSetupError, match=r"smtp\.ca_file"):
        SmtpPool(settings, None)


@pytest.mark.parametrize(("excluded", "mechanism"), [(("LOGIN",), "PLAIN"), (("PLAIN",), "LOGIN")])
async def test_auth_with_the_password_from_the_environment(
    auth_relay: AuthRelay, make_envelope: MakeEnvelope, excluded: tuple[str, ...], mechanism: str
) -> None:
    handler, settings = auth_relay("s3cret-パス", right="s3cret-パス", excluded=excluded)
    async with SmtpPool.from_settings(settings) as pool:
        result = await pool.send(make_envelope())
    assert result.outcome is Outcome.SENT
    assert handler.logins == [(mechanism, "mailer")]


async def test_wrong_password_is_a_setup_error(
    auth_relay: AuthRelay, make_envelope: MakeEnvelope
) -> None:
    handler, settings = auth_relay("wrong")
    async with SmtpPool.from_settings(settings) as pool:
        with pytest.raises(SmtpSetupError, match=r"refused authentication.*: 535 "):
            await pool.send(make_envelope())
    assert handler.commands["MAIL"] == 0


async def test_username_against_a_server_without_auth_is_a_setup_error(
    smtp_server: Server,
    smtp_settings: Settings,
    make_envelope: MakeEnvelope,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "x")
    server = smtp_server()  # AUTH is only offered over TLS by default: not here
    settings = smtp_settings(
        server, username="mailer", password_env=PASSWORD_ENV, allow_insecure_auth=True
    )
    async with SmtpPool.from_settings(settings) as pool:
        with pytest.raises(SmtpSetupError, match="offers no AUTH"):
            await pool.send(make_envelope())


def test_username_without_a_password_is_refused_up_front() -> None:
    with pytest.raises(SmtpSetupError, match="no password"):
        SmtpPool(SmtpSettings(username="mailer", security="starttls"), None)


async def test_a_refused_password_crosses_the_wire_once(
    auth_relay: AuthRelay, make_envelope: MakeEnvelope
) -> None:
    """Issue 6: after a 535 no second mechanism is tried, and no other connection tries again."""
    # the relay offers PLAIN and LOGIN: aiosmtplib's login() would try both, on each connection
    handler, settings = auth_relay("wrong", connections=4)
    async with SmtpPool.from_settings(settings) as pool:
        results = await asyncio.gather(
            *(pool.send(make_envelope()) for _ in range(8)), return_exceptions=True
        )
    assert results and all(isinstance(r, SmtpSetupError) for r in results)
    assert all(": 535 " in str(r) for r in results)
    assert handler.logins == [("PLAIN", "mailer")]  # one AUTH, one mechanism, one connection
    assert handler.commands["MAIL"] == 0


async def test_a_good_password_is_checked_once_then_every_connection_logs_in(
    auth_relay: AuthRelay, make_envelope: MakeEnvelope
) -> None:
    handler, settings = auth_relay("right", connections=3)
    async with SmtpPool.from_settings(settings) as pool:
        results = await asyncio.gather(*(pool.send(make_envelope()) for _ in range(6)))
    assert all(r.outcome is Outcome.SENT for r in results)
    assert 1 <= len(handler.logins) <= 3 and set(handler.logins) == {("PLAIN", "mailer")}
    assert len(handler.messages) == 6


def test_auth_without_tls_is_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="allow_insecure_auth"):
        SmtpSettings(username="mailer", password_env=PASSWORD_ENV)
    allowed = SmtpSettings(username="mailer", password_env=PASSWORD_ENV, allow_insecure_auth=True)
    assert allowed.allow_insecure_auth and allowed.security == "none"
