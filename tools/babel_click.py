"""Babel extractor: the `_()`/`N_()`/`tr()` calls, plus click's help texts (issue 11).

click takes a command's help from its function's docstring and an option's from `help=`; both
stay in English where click expects them, and `run_campaign.TranslatedHelp` looks them up when
`--help` is shown. This extractor finds them for the catalog, so a command landing from another
branch is caught by `tests/i18n/test_catalogs.py` until it is translated.
Used by `make i18n` (babel.cfg) and by the tests; never at run time.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

from babel.messages.extract import extract_python

__all__ = ["KEYWORDS", "extract", "help_texts"]

# `tr(msg, **values)` and `N_(msg)` take the message id as their first argument, like `_`.
KEYWORDS: dict[str, Any] = {"_": None, "N_": None, "tr": None}


def _is_click_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name in ("command", "group")


def help_texts(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of each click help: command docstrings and literal `help=` arguments."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
            _is_click_decorator(d) for d in node.decorator_list
        ):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield node.lineno, inspect.cleandoc(doc)
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                value = keyword.value
                if (
                    keyword.arg == "help"
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    yield value.lineno, inspect.cleandoc(value.value)


def extract(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Collection[str],
    options: Any,  # Babel's own options mapping (encoding, ...)
) -> Iterator[tuple[Any, ...]]:
    """Babel's Python extractor, then every click help text of the file.

    Each item is (line, function name, message(s), comments), as Babel's `extract` expects (its
    own annotation of `extract_python` names another tuple, hence the loose type).
    """
    yield from extract_python(fileobj, keywords, comment_tags, options)
    fileobj.seek(0)
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    for lineno, text in help_texts(source):
        yield lineno, None, text, []
