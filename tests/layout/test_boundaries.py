"""The package layout keeps its promises: each stage imports only the stages before it.

`jobs/__init__.py` draws the data flow; each sub-package's docstring names what it must not
import. This test reads every module's imports (without importing it) and fails on a reach back
upstream, so the layout cannot rot one convenient import at a time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What each package may import from the project (besides itself). `jobs.errors`,
# `jobs.progress`, `jobs.files` (owner-only output files), `jobs.terminal` (text to a terminal)
# `jobs.logs` (log lines with their run_id) and `jobs.i18n` (the operators' language) are shared
# by all; `resolver` is the pure policy everyone may read.
SHARED_MODULES = (
    "jobs.errors",
    "jobs.progress",
    "jobs.files",
    "jobs.terminal",
    "jobs.logs",
    "jobs.i18n",
)
SHARED = {*SHARED_MODULES, "resolver"}
ALLOWED: dict[str, set[str]] = {
    "resolver": set(),
    "jobs.config": set(),
    "jobs.source": {"jobs.config"},
    "jobs.resolution": {"jobs.config", "jobs.source"},
    "jobs.messages": {"jobs.config", "jobs.source", "jobs.resolution"},
    "jobs.smtp": {"jobs.config"},
    "jobs.ledger": {"jobs.config", "jobs.source"},
    "jobs.delivery": {
        "jobs.config",
        "jobs.source",
        "jobs.resolution",
        "jobs.messages",
        "jobs.smtp",
        "jobs.ledger",
    },
    "jobs.bounces": {"jobs.config", "jobs.source", "jobs.messages", "jobs.ledger"},
    "jobs.reports": {
        "jobs.config",
        "jobs.source",
        "jobs.resolution",
        "jobs.messages",
        "jobs.ledger",
    },
}
# the commands' entry points (a module, not a package): the last stage, it calls them all
ALLOWED["jobs.app"] = {p for p in ALLOWED if p.startswith("jobs.")}
# The CLI parses options and calls one entry point per command: it reaches no stage directly.
# It prints, so it escapes data for the terminal with the shared `jobs.terminal`.
CLI_ALLOWED = {"jobs.app", "jobs.config", "jobs.errors", "jobs.terminal", "jobs.i18n", "resolver"}
RUNTIME_FORBIDDEN = ("tools", "tests", "aiosmtpd", "bench")


def _package_of(module: str) -> str | None:
    for package in sorted(ALLOWED, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            return package
    if module in SHARED_MODULES:
        return module
    return None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for root in ("resolver", "jobs"):
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            out.append((".".join(rel.parts).removesuffix(".__init__"), path))
    return out


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_module_imports_only_upstream_stages(module: str, path: Path) -> None:
    own = _package_of(module)
    if own is None or own in SHARED_MODULES:
        allowed: set[str] = set()
    else:
        allowed = ALLOWED[own]
    bad = []
    for imported in _imports(path):
        if imported.split(".")[0] in RUNTIME_FORBIDDEN:
            bad.append(imported)
            continue
        target = _package_of(imported)
        if target is None or target == own or target in allowed or target in SHARED:
            continue
        if imported.startswith("resolver"):
            continue
        bad.append(imported)
    assert not bad, f"{module} reaches outside its stage: {bad}"


@pytest.mark.parametrize("package", sorted(p for p in ALLOWED if p.startswith("jobs.")))
def test_every_package_says_what_it_owns_and_must_not_import(package: str) -> None:
    folder = REPO.joinpath(*package.split("."))
    init = folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "Owns:" in doc, f"{init}: docstring must say what the package owns"
    assert "not import" in doc, f"{init}: docstring must say what it must not import"


def test_the_policy_core_imports_no_io_library() -> None:
    io_libraries = {"sqlalchemy", "jinja2", "aiosmtplib", "click", "alembic", "psycopg", "pymysql"}
    for module, path in _modules():
        if not module.startswith("resolver"):
            continue
        roots = {name.split(".")[0] for name in _imports(path)}
        assert not roots & io_libraries, f"{module} imports {roots & io_libraries}"


def test_the_cli_calls_entry_points_and_reaches_no_stage() -> None:
    bad = [
        imported
        for imported in _imports(REPO / "run_campaign.py")
        if imported.split(".")[0] in ("jobs", "resolver", *RUNTIME_FORBIDDEN)
        and not any(imported == a or imported.startswith(a + ".") for a in CLI_ALLOWED)
    ]
    assert not bad, f"run_campaign.py reaches past jobs.app: {bad}"
