"""The error hierarchy: every failure an operator can act on is a `MailerError` with an exit code.

`run_campaign.py` catches `MailerError` once and prints its one-line message; anything else is a
bug (exit 1). Exit codes are SPEC §8 and public.
"""

from __future__ import annotations

from jobs.i18n import tr

__all__ = [
    "ApprovalRefused",
    "ConfigError",
    "InputError",
    "LostRun",
    "MailerError",
    "NotFound",
    "RunLocked",
    "TemplateError",
    "Terminated",
]


class MailerError(Exception):
    """Root of every error that the CLI reports as one line and an exit code."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(MailerError):
    """Bad input (CSV, options): nothing was changed. Names file, line and column when it can."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        where = ""
        if file is not None:
            where = file
            if line is not None:
                where += tr(", line {line}", line=line)
            if column is not None:
                where += tr(", column {column!r}", column=column)
            where += ": "
        super().__init__(where + message)
        self.file = file
        self.line = line
        self.column = column


class ConfigError(InputError):
    """A settings or campaign file, or an env override, is wrong."""


class TemplateError(InputError):
    """A template fails to compile, references an unknown name or breaks the sandbox."""


class NotFound(InputError):
    """`explain`/`preview`/`status` matched nothing (exit 2, SPEC §8)."""


class ApprovalRefused(MailerError):
    """A campaign that needs an approval has none, or it no longer matches (SPEC §9, exit 2)."""

    exit_code = 2


class RunLocked(MailerError):
    """Another coordinator holds the run (SPEC §7: exit 4 instead of sending twice)."""

    exit_code = 4

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder  # "host X pid N since T", when known


class LostRun(RunLocked):
    """A sender lost its run lock, its lease or its database session, and stopped (SPEC §9).

    Exit 4 like a second coordinator: another process may hold the run's claims now.
    """


class Terminated(BaseException):
    """SIGTERM (what systemd sends to stop a unit): a clean stop, like Ctrl-C (issue 6).

    Not a `MailerError`: like `KeyboardInterrupt` it must pass every `except Exception` on its
    way out, so that nothing logs it and carries on. Exit 143 (128 + 15), as shells report it.
    """

    exit_code = 143
