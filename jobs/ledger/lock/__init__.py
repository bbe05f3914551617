"""One coordinator per run (SPEC §7: a second one exits 4 instead of sending twice).

The lock must die with its holder, so that after a kill -9 the run can be resumed at once: no
lease that has to expire first. On PostgreSQL and MariaDB it is a session-level lock held by a
dedicated connection (`pg_try_advisory_lock`, `GET_LOCK`): the server drops it when the
connection goes, which a dead process's connection does. SQLite lives on one machine, so there
it is an OS lock (`flock`) on a file beside the database, dropped by the kernel with the process.
A host-local file lock is never used for a server database: two machines would both "hold" it.

The loser names the holder. A server lock's holder records itself in `swmail_run_locks` together
with its server session id, and the loser trusts that row only when the session named there is
the one the server says holds the lock now, so a dead holder's leftover row is never quoted.

One module per backend: `sqlite.py` (flock beside the file), `postgresql.py` (advisory lock),
`mariadb.py` (GET_LOCK); `base.py` holds what they share; `acquire_run_lock` chooses by dialect.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from jobs.ledger.codec import utc_now
from jobs.ledger.lock.base import RunLock, ServerLock, holder_description
from jobs.ledger.lock.mariadb import MariaDbLock
from jobs.ledger.lock.postgresql import PostgresLock
from jobs.ledger.lock.sqlite import FileLock, lock_file_path

__all__ = ["RunLock", "acquire_run_lock", "holder_description", "lock_file_path"]


def acquire_run_lock(
    engine: sa.Engine,
    run_id: str,
    *,
    sqlite_path: Path | None = None,
    now: datetime | None = None,
) -> RunLock:
    """Take the run's coordinator lock now, or raise RunLocked naming the current holder.

    `sqlite_path` overrides the database file a SQLite engine points at (the lock file goes
    beside it). The PostgreSQL and MariaDB locks need the ledger tables (`migrate.upgrade`).
    """
    now = utc_now() if now is None else now
    holder = holder_description(now)
    name = engine.dialect.name
    if name == "sqlite":
        database = sqlite_path
        if database is None:
            url_database = engine.url.database
            if not url_database or url_database == ":memory:" or url_database.startswith("file:"):
                raise ValueError("a run lock needs a SQLite database file (not :memory:)")
            database = Path(url_database)
        file_lock = FileLock(lock_file_path(database.resolve(), run_id), run_id, holder)
        file_lock.acquire()
        return file_lock
    server_lock: ServerLock
    if name == "postgresql":
        server_lock = PostgresLock(engine, run_id, holder)
    elif name in ("mysql", "mariadb"):
        server_lock = MariaDbLock(engine, run_id, holder)
    else:
        raise NotImplementedError(f"the ledger does not support {name}")
    server_lock.acquire(now)
    return server_lock
