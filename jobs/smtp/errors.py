"""The one error the sending layer raises: the relay configuration is wrong."""

from __future__ import annotations

from jobs.errors import ConfigError

__all__ = ["SmtpSetupError"]


class SmtpSetupError(ConfigError):
    """Certificate, TLS, credentials, or a relay that refuses the session or the sender.

    Every delivery would fail the same way, so the run stops (exit 2, SPEC §8) with one line
    naming the server, instead of retrying forever or marking every delivery `failed`.
    """
