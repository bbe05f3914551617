"""CLI fixtures: a project-like working folder with a SQLite database, commands run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from run_campaign import cli
from tests.conftest import REPO

AS_OF = "2026-12-01"
CAMPAIGN = "maintenance-notice"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A project-like working folder: config/ and templates/ of the repo, a SQLite file in tmp."""
    monkeypatch.chdir(REPO)
    values = {
        "SWMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "SWMAIL_DATABASE_LEDGER_URL": "",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def loaded(env: dict[str, str], sample_data: Path) -> dict[str, str]:
    assert invoke("db", "init")[0] == 0
    code, out, err = invoke("db", "import", str(sample_data))
    assert code == 0, err
    assert "customers 88" in out
    return env
