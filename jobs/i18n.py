"""The operators' language (issue 11): gettext catalogs, the choice of language, ja formatting.

Owns: the `swmail` gettext domain under `jobs/locale/<lang>/LC_MESSAGES/`, the language in force
for this process, and the few formats that differ in Japanese (dates `2026年12月1日`, names with
様). English is the message id, so a missing entry shows English, never an empty line.
Reason codes, CSV columns, JSON keys and exit codes are a public contract and never pass through
here. Shared by every stage, like `jobs.errors`; must not import any stage.

The catalogs are compiled at install (`make .venv` runs `pybabel compile`); a checkout without a
`.mo` (or with one older than its `.po`, e.g. after a pull) reads the `.po` itself through Babel,
so a fresh clone prints Japanese whichever way it was installed.
"""

from __future__ import annotations

import gettext as _gettext
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from resolver.text import N_

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "Choice",
    "_",
    "choose_language",
    "current_language",
    "fmt_date",
    "fmt_person",
    "language_from_env",
    "localize",
    "set_language",
    "tr",
]

Language = Literal["en", "ja"]
DOMAIN = "swmail"
LANGUAGES: tuple[Language, ...] = ("en", "ja")
DEFAULT_LANGUAGE: Language = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# POSIX order: the first of these that is set (non-empty) decides the messages' language.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


@dataclass(frozen=True, slots=True)
class Choice:
    """The language in force and what decided it (shown by tests and `-v` logs)."""

    language: Language
    source: Literal["option", "setting", "environment", "default"]


def language_from_env(env: Mapping[str, str]) -> Language | None:
    """`ja_JP.UTF-8` → ja; the first of LC_ALL, LC_MESSAGES, LANG that is set decides.

    A set variable naming a language we do not ship (`C`, `fr_FR`) means English, not the next
    variable: that is what the operator's locale says.
    """
    for variable in LOCALE_VARIABLES:
        value = env.get(variable, "")
        if value:
            code = value.split(".")[0].split("@")[0].split("_")[0].lower()
            return "ja" if code == "ja" else "en"
    return None


def choose_language(option: str | None, setting: str | None, env: Mapping[str, str]) -> Choice:
    """Issue 11: `--lang`, else settings `[ui] language`, else the locale variables, else en."""
    if option:
        return Choice(_supported(option), "option")
    if setting:
        return Choice(_supported(setting), "setting")
    from_env = language_from_env(env)
    if from_env is not None:
        return Choice(from_env, "environment")
    return Choice(DEFAULT_LANGUAGE, "default")


def _supported(value: str) -> Language:
    return "ja" if value.lower().startswith("ja") else "en"


def _catalog(language: Language) -> _gettext.NullTranslations:
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as f:
            return _gettext.GNUTranslations(f)
    if po.is_file():
        return _compile_in_memory(po)
    return _gettext.NullTranslations()


def _compile_in_memory(po: Path) -> _gettext.NullTranslations:
    """The `.po` read directly (no `.mo` yet, or a stale one): same result as `pybabel compile`."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


_cache: dict[Language, _gettext.NullTranslations] = {}
_current: list[tuple[Language, _gettext.NullTranslations]] = [
    (DEFAULT_LANGUAGE, _gettext.NullTranslations())
]


def set_language(language: Language) -> None:
    """Make `language` the one every later `_()` answers in (one per process, set by the CLI)."""
    if language not in _cache:
        _cache[language] = _catalog(language)
    _current[0] = (language, _cache[language])


def current_language() -> Language:
    """The language in force (en until the CLI chose one)."""
    return _current[0][0]


def _(message: str) -> str:
    """`message` (an English message id) in the language in force."""
    if not message:  # gettext answers "" with the catalog's header
        return message
    return _current[0][1].gettext(message)


def tr(message: str, /, **values: object) -> str:
    """`_(message)` with `{name}` fields filled in (`str.format`, so `{n:,}` works)."""
    return _(message).format(**values)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_patterns: dict[tuple[str, tuple[tuple[str, str], ...]], re.Pattern[str]] = {}


def _regex(template: str, phrases: Mapping[str, str], depth: int = 0) -> str:
    parts = _PLACEHOLDER.split(template)  # literal, name, literal, name, ...
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(re.escape(part))
        elif part in phrases and depth == 0:
            # an optional phrase (" on {day}"): its own literal words keep neighbours apart
            out.append(f"(?P<{part}>(?:{_regex(phrases[part], phrases, depth + 1)})?)")
        else:
            out.append(f"(?P<{part}>.*?)" if depth == 0 else ".*?")
    return "".join(out)


def _pattern(template: str, phrases: Mapping[str, str]) -> re.Pattern[str]:
    key = (template, tuple(sorted(phrases.items())))
    if key not in _patterns:
        _patterns[key] = re.compile(f"^{_regex(template, phrases)}$", re.DOTALL)
    return _patterns[key]


def localize(text: str, templates: Iterable[str], phrases: Mapping[str, str] | None = None) -> str:
    """An English sentence built from one of `templates` (resolver's details), translated.

    The resolver stays pure and the ledger and JSON keep the English sentence; what an operator
    reads is matched back to its template and each filled-in part translated in turn (a role
    word, a nested phrase, a date). `phrases` names the placeholders that hold an optional
    phrase of their own (`{when}` = `" on {day}"` or nothing), so that two of them side by side
    still split in the right place. A sentence no template matches is shown as it is.
    """
    if current_language() == "en":
        return text
    phrases = phrases or {}
    # the most specific first: `{role}{person} of {account}` would match almost anything
    ordered = sorted(
        (*templates, *phrases.values()),
        key=lambda t: len(_PLACEHOLDER.sub("", t)),
        reverse=True,
    )
    return _localize(text, tuple(ordered), phrases, depth=0)


def _localize(text: str, templates: tuple[str, ...], phrases: Mapping[str, str], depth: int) -> str:
    translated = _(text)
    if translated != text or depth > 3 or not text:
        return translated
    if _ISO_DATE.fullmatch(text):
        return fmt_date(date.fromisoformat(text))
    for template in templates:
        found = _pattern(template, phrases).match(text)
        if found is not None:
            values = _split_adjacent(template, found.groupdict())
            parts = {k: _localize(v, templates, phrases, depth + 1) for k, v in values.items()}
            return tr(template, **parts)
    if "; " in text:  # several sentences joined, e.g. where each suppression came from
        return "; ".join(_localize(t, templates, phrases, depth + 1) for t in text.split("; "))
    return text


def _split_adjacent(template: str, values: dict[str, str]) -> dict[str, str]:
    """Two placeholders side by side (`{role}{person}`) split where the left one is a phrase.

    The pattern gives the left one the shortest text, often nothing (`user u1` would all go to
    `{person}`); the longest start of the pair that the catalog knows is the left one instead.
    """
    parts = _PLACEHOLDER.split(template)
    for i in range(1, len(parts) - 2, 2):
        left, between, right = parts[i], parts[i + 1], parts[i + 2]
        if between or left not in values or right not in values:
            continue
        both = values[left] + values[right]
        for cut in range(len(both), 0, -1):
            if _(both[:cut]) != both[:cut]:
                values = {**values, left: both[:cut], right: both[cut:]}
                break
    return values


def fmt_date(day: date) -> str:
    """A date as the operator writes it: `2026-12-01` in en, `2026年12月1日` in ja."""
    if current_language() == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return day.isoformat()


def fmt_person(name: str, email: str) -> str:
    """`name <email>`; in ja the name takes 様, as a Japanese office writes to a person."""
    if current_language() == "ja" and name:
        return f"{name} 様 <{email}>"
    return f"{name} <{email}>"
