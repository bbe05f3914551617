"""The run ID `<campaign_id>/<run_key>` (SPEC §7) and the rule for its two parts, in one place.

Campaign files (their `id`), the CLI (`--run-key`, `--run RUN_ID`), the ledger and the reports
all build or read run IDs; each imports them from here, so the format cannot drift between a
command that writes a run and one that looks it up.
"""

from __future__ import annotations

from jobs.errors import InputError

__all__ = [
    "MAX_NAME_LENGTH",
    "RUN_ID_SEPARATOR",
    "make_run_id",
    "name_problem",
    "split_run_id",
]

RUN_ID_SEPARATOR = "/"
MAX_NAME_LENGTH = 128  # the campaign_id and run_key columns of the ledger


def name_problem(value: str) -> str | None:
    """What is wrong with `value` as a campaign id or run key, or None when it is fine.

    Non-empty, no '/' (it separates the two in a RUN_ID), no spaces or control characters (a
    RUN_ID is typed in shells and printed in one-line logs), at most 128 characters.
    """
    if not value:
        return "must not be empty"
    if RUN_ID_SEPARATOR in value:
        return f"must not contain {RUN_ID_SEPARATOR!r}"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return "must not contain spaces or control characters"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters"
    return None


def make_run_id(campaign_id: str, run_key: str) -> str:
    """§7: RUN_ID `<campaign_id>/<run_key>`; InputError when either part breaks the rule."""
    for what, value in (("campaign id", campaign_id), ("run key", run_key)):
        problem = name_problem(value)
        if problem is not None:
            raise InputError(f"{what} {value[:40]!r} {problem}")
    return f"{campaign_id}{RUN_ID_SEPARATOR}{run_key}"


def split_run_id(run_id: str) -> tuple[str, str]:
    """(campaign_id, run_key) of a RUN_ID; InputError when it is not `<campaign>/<key>`."""
    campaign_id, separator, run_key = run_id.partition(RUN_ID_SEPARATOR)
    if not separator:
        raise InputError(f"RUN_ID {run_id[:40]!r} must be <campaign_id>{RUN_ID_SEPARATOR}<run_key>")
    make_run_id(campaign_id, run_key)  # the same rule for both parts
    return campaign_id, run_key
