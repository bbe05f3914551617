"""A pydantic `ValidationError` as the one line an operator reads (SPEC §8: exit 2, no dump).

Pydantic lists every problem over several lines with links; an operator editing a file by hand
needs the first problem, the key and where it came from. One home for that wording, shared by
the settings and the campaign files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from jobs.config.secrets import mask_secrets

__all__ = ["first_problem"]

_SHOWN_INPUT = 60


def _dotted(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > _SHOWN_INPUT:
        text = text[: _SHOWN_INPUT - 1] + "…"
    return mask_secrets(text)


def first_problem(
    error: ValidationError,
    where: str,
    *,
    prefix: tuple[str, ...] = (),
    origins: Mapping[tuple[str, str], str] | None = None,
    sections: bool = False,
) -> str:
    """`<where>: <key>: <what is wrong>, got <value>`.

    `origins` names the source of a key that did not come from `where` (an env variable);
    `sections`: the top level holds `[sections]` (settings) rather than keys (campaigns).
    """
    problems = error.errors(include_url=False)
    first = problems[0]
    loc: tuple[int | str, ...] = (*prefix, *first["loc"])
    if origins and len(loc) >= 2:
        where = origins.get((str(loc[0]), str(loc[1])), where)
    elif origins and len(loc) == 1:  # a rule across keys: name every variable that took part
        variables = sorted(v for (section, _), v in origins.items() if section == loc[0])
        if variables:
            where = f"{where} with {', '.join(variables)}"
    kind = first["type"]
    if kind == "extra_forbidden":
        top = sections and len(loc) == 1
        text = f"unknown section [{loc[0]}]" if top else f"unknown key {_dotted(loc)}"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        text = f"[{_dotted(loc)}] must be a table" if loc else "must be a table"
    elif kind == "value_error":
        message = str(first["msg"]).removeprefix("Value error, ")
        text = f"{_dotted(loc)}: {message}" if loc and "." not in message else message
    else:
        message = str(first["msg"])
        text = f"{_dotted(loc)}: {message[:1].lower()}{message[1:]}, got {_shown(first['input'])}"
    more = len(problems) - 1
    if more:
        text += f" (and {more} more problem{'s' if more > 1 else ''})"
    return f"{where}: {' '.join(text.split())}"
