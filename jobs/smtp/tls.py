"""The client TLS context: certificates are always verified (SPEC §7), never optionally."""

from __future__ import annotations

import ssl

from jobs.config.settings import SmtpSettings
from jobs.i18n import tr
from jobs.smtp.errors import SmtpSetupError

__all__ = ["client_tls_context"]


def client_tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """A verifying context for `security` starttls/tls; None for `none`.

    `ca_file` adds a private CA (an internal relay) to the system store rather than replacing
    it, so that pointing it at a bundle never silently distrusts public CAs.
    """
    if settings.security == "none":
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    # create_default_context already requires a valid chain and a matching host name (and
    # TLS 1.2 or newer); stated here so that nobody relaxes it by accident.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SmtpSetupError(
                tr(
                    "smtp.ca_file {ca_file!r} cannot be loaded: {exc}",
                    ca_file=settings.ca_file,
                    exc=exc,
                )
            ) from None
    return context
