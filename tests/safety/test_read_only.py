"""Read-only commands never create a database (issue 6): a mistyped URL is exit 2, not a file.

`status`, `resolve`, `explain`, `preview`, `dry-run` and `audit export` only read. Pointed at a
SQLite file that does not exist, each says so in one line naming the URL and `db init`, and
leaves no file or folder behind; `db init` is what creates it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.safety.conftest import AS_OF, CAMPAIGN, RUN_ID, Cli

READ_ONLY = {
    "status": ("status",),
    "resolve": ("resolve", "--campaign", CAMPAIGN, "--as-of", AS_OF),
    "explain": ("explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--email", "a@example.jp"),
    "preview": ("preview", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--email", "a@example.jp"),
    "dry-run": ("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", "out"),
    "audit export": ("audit", "export", "--run", RUN_ID, "--out", "audit.csv"),
}


@pytest.mark.parametrize("command", sorted(READ_ONLY))
def test_a_read_only_command_creates_no_database_file_or_folder(swmail: Cli, command: str) -> None:
    url = "sqlite:///var/data/swmail.sqlite3"  # relative: under the working folder
    result = swmail(*READ_ONLY[command], SWMAIL_DATABASE_URL=url)
    assert result.code == 2, (result.out, result.err)
    [line] = result.err.strip().splitlines()
    assert url in line
    assert "swmail db init" in line
    assert sorted(os.listdir(swmail.workdir)) == []  # no var/, no database, no output


@pytest.mark.parametrize("command", ["resolve", "status"])
def test_a_separate_ledger_file_is_not_created_either(
    swmail: Cli, command: str, tmp_path: Path, sample_data: Path
) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    assert swmail("db", "init", SWMAIL_DATABASE_URL=source).code == 0
    assert swmail("db", "import", str(sample_data), SWMAIL_DATABASE_URL=source).code == 0
    ledger = tmp_path / "ledger" / "swmail.sqlite3"
    result = swmail(
        *READ_ONLY[command],
        SWMAIL_DATABASE_URL=source,
        SWMAIL_DATABASE_LEDGER_URL=f"sqlite:///{ledger}",
    )
    if command == "resolve":
        assert result.code == 0, result.err  # no ledger yet: no hard bounces to add
    else:
        assert result.code == 2
        assert "swmail db init" in result.err
    assert not ledger.parent.exists()


def test_db_init_creates_the_database_and_its_folder(swmail: Cli) -> None:
    result = swmail("db", "init", SWMAIL_DATABASE_URL="sqlite:///var/data/swmail.sqlite3")
    assert result.code == 0, result.err
    assert (swmail.workdir / "var" / "data" / "swmail.sqlite3").is_file()
    assert swmail("status", SWMAIL_DATABASE_URL="sqlite:///var/data/swmail.sqlite3").code == 0
