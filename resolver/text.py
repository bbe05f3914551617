"""A marker for sentences the policy owns but the shell translates (issue 11).

The resolver stays pure: it never looks up a language. Sentences written here (the one per reason
code, warnings' details) are wrapped in `N_`, which returns them unchanged and lets
`pybabel extract` find them; `jobs.i18n` translates them at the edge, when an operator reads them.
"""

from __future__ import annotations

__all__ = ["N_"]


def N_(message: str) -> str:
    """Mark `message` for the catalog; return it unchanged (English is the message id)."""
    return message
