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
from jobs.i18n import N_, _, current_language, tr

__all__ = ["first_problem"]

_SHOWN_INPUT = 60

# pydantic's own sentences by error type, for the operators who do not read English (issue 11);
# English keeps pydantic's wording, and a type not listed here shows it too.
_PYDANTIC_WORDS = {
    "int_type": N_("input should be a valid integer"),
    "int_parsing": N_("input should be a valid integer"),
    "int_from_float": N_("input should be a valid integer"),
    "float_type": N_("input should be a valid number"),
    "float_parsing": N_("input should be a valid number"),
    "bool_type": N_("input should be true or false"),
    "bool_parsing": N_("input should be true or false"),
    "string_type": N_("input should be a valid string"),
    "string_too_short": N_("input should have at least {min_length} character(s)"),
    "less_than_equal": N_("input should be less than or equal to {le}"),
    "less_than": N_("input should be less than {lt}"),
    "greater_than_equal": N_("input should be greater than or equal to {ge}"),
    "greater_than": N_("input should be greater than {gt}"),
    "finite_number": N_("input should be a finite number"),
    "literal_error": N_("input should be {expected}"),
    "enum": N_("input should be {expected}"),
    "missing": N_("a value is required"),
    "list_type": N_("input should be a list"),
    "date_from_datetime_parsing": N_("input should be a date (YYYY-MM-DD)"),
    "date_parsing": N_("input should be a date (YYYY-MM-DD)"),
    "date_type": N_("input should be a date (YYYY-MM-DD)"),
}


def _pydantic_message(problem: Any) -> str:
    message = str(problem["msg"])
    template = _PYDANTIC_WORDS.get(problem["type"])
    if template is None or current_language() == "en":
        return f"{message[:1].lower()}{message[1:]}"
    context = {k: str(v) for k, v in (problem.get("ctx") or {}).items()}
    try:
        return tr(template, **context)
    except (KeyError, IndexError):
        return f"{message[:1].lower()}{message[1:]}"


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
            where = tr("{where} with {variables}", where=where, variables=", ".join(variables))
    kind = first["type"]
    if kind == "extra_forbidden":
        top = sections and len(loc) == 1
        text = (
            tr("unknown section [{name}]", name=loc[0])
            if top
            else tr("unknown key {name}", name=_dotted(loc))
        )
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        text = tr("[{name}] must be a table", name=_dotted(loc)) if loc else _("must be a table")
    elif kind == "value_error":
        message = str(first["msg"]).removeprefix("Value error, ")
        text = f"{_dotted(loc)}: {message}" if loc and "." not in message else message
    else:
        text = tr(
            "{key}: {problem}, got {value}",
            key=_dotted(loc),
            problem=_pydantic_message(first),
            value=_shown(first["input"]),
        )
    more = len(problems) - 1
    if more:
        text += tr(" (and {n} more problems)", n=more) if more > 1 else _(" (and 1 more problem)")
    return f"{where}: {' '.join(text.split())}"
