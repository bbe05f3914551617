"""File modes (issue 6): personal data is owner-only whatever the umask.

Every file the job writes (the SQLite database and its -wal/-shm side files, audit and warnings
CSVs, dry-run messages, the error log) is 0600 and every folder it creates for them 0700, under
a permissive umask (022, the usual default) and under none at all (000).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

import run_campaign
from tests.safety.conftest import AS_OF, CAMPAIGN, RUN_ID, Cli

UMASKS = pytest.mark.parametrize("umask", [0o022, 0o000], indirect=True, ids=["022", "000"])


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@UMASKS
def test_the_sqlite_database_its_side_files_and_its_folders_are_owner_only(
    swmail: Cli, umask: int, sample_data: Path
) -> None:
    url = "sqlite:///var/db/swmail.sqlite3"
    assert swmail("db", "init", SWMAIL_DATABASE_URL=url).code == 0
    assert swmail("db", "import", str(sample_data), SWMAIL_DATABASE_URL=url).code == 0
    var = swmail.workdir / "var"
    database = var / "db" / "swmail.sqlite3"
    assert (mode(var), mode(var / "db"), mode(database)) == (0o700, 0o700, 0o600)

    # The side files exist while a writer is connected; SQLite gives them the database's mode.
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("UPDATE customers SET company_name = company_name")
        conn.commit()
        side = {p.name: mode(p) for p in database.parent.iterdir() if p != database}
    finally:
        conn.close()
    assert side == {"swmail.sqlite3-wal": 0o600, "swmail.sqlite3-shm": 0o600}


@UMASKS
def test_dry_run_files_and_folders_are_owner_only(
    swmail: Cli, umask: int, sample_data: Path
) -> None:
    swmail.env["SWMAIL_DATABASE_URL"] = "sqlite:///swmail.sqlite3"
    assert swmail("db", "init").code == 0
    assert swmail("db", "import", str(sample_data)).code == 0
    out = swmail.workdir / "reports" / "dry"
    result = swmail("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", str(out))
    assert result.code == 0, result.err
    assert (mode(out.parent), mode(out), mode(out / "messages")) == (0o700, 0o700, 0o700)
    files = [out / "audit.csv", out / "warnings.csv", *(out / "messages").iterdir()]
    assert len(files) > 100
    assert {mode(f) for f in files} == {0o600}
    assert sorted(os.listdir(out)) == ["audit.csv", "messages", "warnings.csv"]  # no leftovers


@UMASKS
def test_the_audit_export_is_owner_only(umask: int, swmail: Cli, sent_sample_run: str) -> None:
    out = swmail.workdir / "exports" / "audit.csv"
    result = swmail(
        "audit", "export", "--run", RUN_ID, "--out", str(out), SWMAIL_DATABASE_URL=sent_sample_run
    )
    assert result.code == 0, result.err
    assert (mode(out.parent), mode(out)) == (0o700, 0o600)
    # the run's lock file beside the SQLite ledger too (it names the host and pid)
    ledger = Path(sent_sample_run.removeprefix("sqlite:///"))
    locks = list(ledger.parent.glob(f"{ledger.name}.*.lock"))
    assert locks and {mode(lock) for lock in locks} == {0o600}
    assert sorted(os.listdir(out.parent)) == ["audit.csv"]


@UMASKS
def test_the_error_log_is_owner_only(
    umask: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        run_campaign._internal_error(RuntimeError("name 山田 in a traceback"))
    assert exited.value.code == 1
    log = tmp_path / "var" / "log" / "swmail-errors.log"
    assert (mode(tmp_path / "var"), mode(log.parent), mode(log)) == (0o700, 0o700, 0o600)
    assert "山田" in log.read_text(encoding="utf-8")
