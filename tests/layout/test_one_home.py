"""Each repeated rule has one home (issue 6 item 2); this keeps a second copy from creeping back.

The homes: run IDs and the run-key rule in `jobs/config/runs.py`; reason-code joining and the
delivery status words in `resolver/model.py`; the admin cutoff date in `resolver/warnings.py`;
the suppression (dedupe) key in `resolver/normalize.py`. Every other module imports them, so a
literal copy of any of them elsewhere in the runtime, the tools or the benchmarks is a failure.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from resolver.model import REASON_SEPARATOR, DeliveryStatus

REPO = Path(__file__).resolve().parents[2]
SCANNED = [
    *sorted((REPO / "jobs").rglob("*.py")),
    *sorted((REPO / "resolver").rglob("*.py")),
    *sorted((REPO / "tools").rglob("*.py")),
    *sorted((REPO / "bench").rglob("*.py")),
    REPO / "run_campaign.py",
]
# Migrations are history: they spell the schema as it was, on purpose.
MIGRATIONS = REPO / "jobs" / "ledger" / "migrations"
STATUS_WORDS = {s.value for s in DeliveryStatus}


def _files(home: str) -> list[Path]:
    return [p for p in SCANNED if p != REPO / home and MIGRATIONS not in p.parents]


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"))


def _labels(tree: ast.AST) -> set[int]:
    """Constants passed to a call (`Progress("sending", …)`, `name="sending"`): words, not rules."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.update(id(a) for a in node.args)
            found.update(id(k.value) for k in node.keywords)
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


@pytest.mark.parametrize(
    "path", _files("resolver/model.py"), ids=lambda p: str(p.relative_to(REPO))
)
def test_status_words_and_code_joining_live_in_resolver_model(path: Path) -> None:
    tree = _tree(path)
    docs = _docstrings(tree) | _labels(tree)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docs and node.value in STATUS_WORDS:
            bad.append(f"line {node.lineno}: status word {node.value!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("join", "split")
            and isinstance(node.func.value, ast.Constant)
            and node.func.value.value == REASON_SEPARATOR
        ):
            bad.append(f"line {node.lineno}: {REASON_SEPARATOR!r}.{node.func.attr}")
    assert not bad, bad


@pytest.mark.parametrize(
    "path", _files("resolver/warnings.py"), ids=lambda p: str(p.relative_to(REPO))
)
def test_the_admin_cutoff_lives_in_resolver_warnings(path: Path) -> None:
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and [
            a.value for a in node.args if isinstance(a, ast.Constant)
        ] == [2019, 9, 24]:
            pytest.fail(f"line {node.lineno}: a second copy of the admin cutoff date")


@pytest.mark.parametrize(
    "path", _files("jobs/config/runs.py"), ids=lambda p: str(p.relative_to(REPO))
)
def test_run_ids_are_built_and_split_in_jobs_config_runs(path: Path) -> None:
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            for left, middle, right in zip(parts, parts[1:], parts[2:], strict=False):
                if (
                    isinstance(left, ast.FormattedValue)
                    and isinstance(middle, ast.Constant)
                    and middle.value == "/"
                    and isinstance(right, ast.FormattedValue)
                    and "run_key" in ast.unparse(right)
                ):
                    pytest.fail(f"line {node.lineno}: a RUN_ID built by hand")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("split", "partition")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "/"
            and "run" in ast.unparse(node.func.value)
        ):
            pytest.fail(f"line {node.lineno}: a RUN_ID split by hand")


@pytest.mark.parametrize(
    "path", _files("resolver/normalize.py"), ids=lambda p: str(p.relative_to(REPO))
)
def test_the_suppression_key_is_resolver_normalize_dedupe_key(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert ".strip().lower()" not in text, "an address keyed by hand: use dedupe_key"
