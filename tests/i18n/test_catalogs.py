"""Issue 11: every operator-facing string has a Japanese translation, or the build fails.

The message ids are extracted from the source the way `make i18n` does (Babel with
`tools/babel_click.py`: `_`, `N_`, `tr` and click's help texts), so a string added on any branch
without a translation fails here, not in front of an operator.
"""

from __future__ import annotations

import gettext
import io
import os
import re
import shutil
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import jobs.i18n as i18n
from tests.conftest import REPO
from tools.babel_click import KEYWORDS

LOCALES = REPO / "jobs" / "locale"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _source_ids() -> set[str]:
    method_map = [
        ("run_campaign.py", "tools.babel_click:extract"),
        ("jobs/**.py", "tools.babel_click:extract"),
        ("resolver/**.py", "tools.babel_click:extract"),
    ]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(REPO), method_map=method_map, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(language: str) -> dict[str, tuple[str, bool]]:
    with (LOCALES / language / "LC_MESSAGES" / "swmail.po").open("rb") as f:
        catalog = read_po(f)
    return {m.id: (m.string, m.fuzzy) for m in catalog if m.id and isinstance(m.id, str)}


def _fields(text: str) -> set[str]:
    return {
        f"{name}!{conv}:{spec}" for _, name, spec, conv in string.Formatter().parse(text) if name
    }


@pytest.fixture(scope="module")
def source_ids() -> set[str]:
    ids = _source_ids()
    assert len(ids) > 200, "the extraction found too little: is tools/babel_click.py broken?"
    return ids


def test_every_source_string_has_a_japanese_translation(source_ids: set[str]) -> None:
    ja = _catalog("ja")
    missing = sorted(i for i in source_ids if i not in ja or not ja[i][0] or ja[i][1])
    assert not missing, (
        f"{len(missing)} string(s) without a Japanese translation (run `make i18n`, translate "
        f"jobs/locale/ja/LC_MESSAGES/swmail.po): {missing[:10]}"
    )


def test_both_catalogs_hold_every_source_string(source_ids: set[str]) -> None:
    for language in ("en", "ja"):
        absent = sorted(source_ids - set(_catalog(language)))
        assert not absent, f"{language}: run `make i18n`; missing {absent[:10]}"


def _literal(text: str) -> str:
    return "".join(part for part, *_ in string.Formatter().parse(text))


def test_translations_read_as_japanese_and_keep_every_placeholder() -> None:
    problems = []
    for msgid, (msgstr, _fuzzy) in _catalog("ja").items():
        if not msgstr:
            continue
        if _fields(msgid) != _fields(msgstr):  # a lost {name} would fail at run time
            problems.append(f"placeholders differ: {msgid!r} → {msgstr!r}")
        has_words = re.search(r"[A-Za-z]{3,}", _literal(msgid)) is not None
        if has_words and not JAPANESE.search(_literal(msgstr)):
            problems.append(f"not Japanese: {msgid!r} → {msgstr!r}")
    assert not problems, "\n".join(problems)


def test_the_catalogs_compile_as_pybabel_compile_checks_them() -> None:
    """`pybabel compile` (run by `make .venv`) refuses incompatible placeholders: so does this."""
    for language in ("en", "ja"):
        with (LOCALES / language / "LC_MESSAGES" / "swmail.po").open("rb") as f:
            catalog = read_po(f)
        problems = [f"{message.id!r}: {errors}" for message, errors in catalog.check() if errors]
        assert not problems, f"{language}: " + "\n".join(problems)


def test_a_checkout_without_compiled_catalogs_reads_the_po(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh `pip install -e .` has no .mo: the .po is read, with the same result."""
    copy = tmp_path / "locale"
    shutil.copytree(LOCALES, copy, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(i18n, "LOCALE_DIR", copy)
    monkeypatch.setattr(i18n, "_cache", {})
    i18n.set_language("ja")
    assert i18n._("by reason:") == "理由別:"
    with (LOCALES / "ja" / "LC_MESSAGES" / "swmail.po").open("rb") as f:
        catalog = read_po(f)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    compiled = gettext.GNUTranslations(buffer)
    for message in catalog:
        if message.id and isinstance(message.id, str):
            assert i18n._(message.id) == compiled.gettext(message.id)


def test_a_stale_compiled_catalog_loses_to_a_newer_po(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a pull that changed a .po, the old .mo must not hide the new translations."""
    copy = tmp_path / "locale"
    folder = copy / "ja" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "swmail.mo").write_bytes(b"not a catalog")  # would fail if it were read
    shutil.copy(LOCALES / "ja" / "LC_MESSAGES" / "swmail.po", folder / "swmail.po")
    mo_time = (folder / "swmail.mo").stat().st_mtime
    os.utime(folder / "swmail.po", (mo_time + 10, mo_time + 10))
    monkeypatch.setattr(i18n, "LOCALE_DIR", copy)
    monkeypatch.setattr(i18n, "_cache", {})
    i18n.set_language("ja")
    assert i18n._("warnings:") == "警告:"
