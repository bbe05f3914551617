"""One coordinator per run; the lock dies with its holder (SPEC §7, exit code 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs.errors import RunLocked
from jobs.ledger import acquire_run_lock
from jobs.ledger.lock import lock_file_path

REPO = Path(__file__).resolve().parents[2]
HOLDER = Path(__file__).with_name("lock_holder.py")
RUN_ID = "maintenance-notice/2026-12-01"


@pytest.fixture
def holder(db_url: str, ledger: sa.Engine) -> Iterator[subprocess.Popen[str]]:
    """A second process that holds the run lock until it is killed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(HOLDER), db_url, RUN_ID], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"locked {proc.pid}\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_a_second_coordinator_is_refused_naming_the_holder(
    ledger: sa.Engine, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(RunLocked) as refused:
        acquire_run_lock(ledger, RUN_ID)
    message = str(refused.value)
    assert message.startswith(f"run {RUN_ID} is held by host ")
    assert f" pid {holder.pid} since " in message
    assert refused.value.exit_code == 4


@pytest.mark.slow
def test_a_killed_holder_frees_the_run_at_once(
    ledger: sa.Engine, holder: subprocess.Popen[str]
) -> None:
    holder.kill()
    holder.wait()
    with acquire_run_lock(ledger, RUN_ID) as lock:
        assert lock.still_held()
        # a later loser names the new holder, never the dead one's leftover record
        with pytest.raises(RunLocked) as refused:
            acquire_run_lock(ledger, RUN_ID)
    assert f" pid {os.getpid()} since " in str(refused.value)
    assert f" pid {holder.pid} " not in str(refused.value)


def test_release_frees_the_run(ledger: sa.Engine) -> None:
    lock = acquire_run_lock(ledger, RUN_ID)
    with pytest.raises(RunLocked):
        acquire_run_lock(ledger, RUN_ID)
    lock.release()
    assert not lock.still_held()
    with acquire_run_lock(ledger, RUN_ID) as again:
        assert again.still_held()


def test_runs_lock_independently(ledger: sa.Engine) -> None:
    with (
        acquire_run_lock(ledger, RUN_ID),
        acquire_run_lock(ledger, "maintenance-notice/2026-12-02") as other,
    ):
        assert other.still_held()


def test_sqlite_lock_file_sits_beside_the_database(sqlite_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(sqlite_url)
    database = tmp_path / "swmail.sqlite3"
    with acquire_run_lock(engine, RUN_ID) as lock:
        path = lock_file_path(database, RUN_ID)
        assert path.parent == database.parent
        assert path.read_text().startswith(lock.holder)
    engine.dispose()


def test_sqlite_path_overrides_the_url(sqlite_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(sqlite_url)
    elsewhere = tmp_path / "elsewhere.sqlite3"
    with acquire_run_lock(engine, RUN_ID, sqlite_path=elsewhere):
        assert lock_file_path(elsewhere, RUN_ID).exists()
        # the same run under another database file is another lock
        with acquire_run_lock(engine, RUN_ID) as other:
            assert other.still_held()
    engine.dispose()
