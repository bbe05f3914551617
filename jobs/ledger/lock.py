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
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import socket
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import sqlalchemy as sa

from jobs.errors import RunLocked
from jobs.ledger.codec import utc_now
from jobs.ledger.models import RunLockRow, RunRow

__all__ = ["RunLock", "acquire_run_lock", "holder_description", "lock_file_path"]

# A loser may look while the winner is between taking the lock and recording itself.
HOLDER_WAIT_SECONDS = 2.0
HOLDER_POLL_SECONDS = 0.02

_PID = re.compile(r"\bpid (\d+)\b")
_HOLDER = re.compile(r"host (\S+) pid (\d+)\b")


def holder_description(now: datetime | None = None) -> str:
    """ "host X pid N since T": what a loser prints about this process."""
    since = (utc_now() if now is None else now).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"host {socket.gethostname()} pid {os.getpid()} since {since}"


def _digest(text: str) -> bytes:
    return hashlib.sha256(f"swmail-run-lock:{text}".encode()).digest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # alive, but another user's
    return True


def _dying(holder: str) -> bool:
    """A holder on this host whose process is gone: the server is about to drop its session."""
    match = _HOLDER.match(holder)
    return (
        match is not None
        and match.group(1) == socket.gethostname()
        and not _pid_alive(int(match.group(2)))
    )


def _locked(run_id: str, holder: str) -> RunLocked:
    return RunLocked(f"run {run_id} is held by {holder}", holder=holder)


class RunLock(ABC):
    """A held run lock; release it with `release()` or by leaving the `with` block."""

    def __init__(self, run_id: str, holder: str) -> None:
        self.run_id = run_id
        self.holder = holder
        self._released = False

    @abstractmethod
    def still_held(self) -> bool:
        """Whether this process still holds the lock (False if the server dropped our session)."""

    @abstractmethod
    def _release(self) -> None: ...

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


# --- PostgreSQL and MariaDB: a session-level lock on a dedicated connection ---------------------


class _ServerLock(RunLock):
    """Common path of the two server databases; subclasses supply the lock SQL."""

    def __init__(self, engine: sa.Engine, run_id: str, holder: str) -> None:
        super().__init__(run_id, holder)
        self._engine = engine
        self._conn: sa.Connection | None = None
        self._session_id = 0

    # dialect-specific pieces
    @abstractmethod
    def _prepare(self, conn: sa.Connection) -> None:
        """Keep the server from closing the lock connection while it idles through a run."""

    @abstractmethod
    def _try_lock(self, conn: sa.Connection) -> bool: ...

    @abstractmethod
    def _unlock(self, conn: sa.Connection) -> None: ...

    @abstractmethod
    def _session(self, conn: sa.Connection) -> int: ...

    @abstractmethod
    def _holder_session(self, conn: sa.Connection) -> int | None:
        """The server session holding the lock now, or None when nobody does."""

    def _connect(self) -> sa.Connection:
        # AUTOCOMMIT: the lock outlives transactions, and an idle open transaction would be
        # killed by idle-transaction timeouts (taking the lock with it) and block vacuum.
        return self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def acquire(self, now: datetime) -> None:
        deadline = time.monotonic() + HOLDER_WAIT_SECONDS
        while True:
            conn = self._connect()
            try:
                if self._try_lock(conn):
                    self._prepare(conn)
                    self._conn = conn
                    self._session_id = self._session(conn)
                    self._write_holder(conn, now)
                    return
                session, holder = self._current_holder(conn)
            except BaseException:
                conn.invalidate()
                conn.close()
                raise
            conn.close()
            if holder is not None and not _dying(holder):
                raise _locked(self.run_id, holder)
            if time.monotonic() >= deadline:
                unnamed = f"database session {session}" if session else "another coordinator"
                raise _locked(self.run_id, holder or unnamed)
            # released meanwhile, not recorded yet, or a killed holder whose session the
            # server is still closing: look again
            time.sleep(HOLDER_POLL_SECONDS)

    def _write_holder(self, conn: sa.Connection, now: datetime) -> None:
        values = {"holder": self.holder, "session_id": self._session_id, "acquired_at": now}
        updated = conn.execute(
            sa.update(RunLockRow).where(RunLockRow.run_id == self.run_id).values(**values)
        ).rowcount
        if not updated:  # only the lock holder writes this row: no insert race
            conn.execute(sa.insert(RunLockRow).values(run_id=self.run_id, **values))

    def _current_holder(self, conn: sa.Connection) -> tuple[int | None, str | None]:
        """The server session holding the lock now, and its description if it recorded one."""
        session = self._holder_session(conn)
        if session is None:
            return None, None
        recorded = conn.execute(
            sa.select(RunLockRow.session_id, RunLockRow.holder).where(
                RunLockRow.run_id == self.run_id
            )
        ).one_or_none()
        if recorded is None or recorded.session_id != session:
            return session, None  # not recorded yet; a leftover row names a dead holder
        return session, recorded.holder

    def still_held(self) -> bool:
        if self._conn is None or self._released:
            return False
        try:
            return self._holder_session(self._conn) == self._session_id
        except sa.exc.DBAPIError:
            return False

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(
                sa.delete(RunLockRow).where(
                    RunLockRow.run_id == self.run_id, RunLockRow.session_id == self._session_id
                )
            )
            conn.execute(
                sa.update(RunRow)
                .where(RunRow.run_id == self.run_id, RunRow.coordinator == self.holder)
                .values(coordinator=None)
            )
            self._unlock(conn)
        finally:
            # never hand a connection that might still hold the lock back to the pool
            conn.invalidate()
            conn.close()


class _PostgresLock(_ServerLock):
    def __init__(self, engine: sa.Engine, run_id: str, holder: str) -> None:
        super().__init__(engine, run_id, holder)
        self._key = int.from_bytes(_digest(run_id)[:8], "big", signed=True)
        # pg_locks shows a bigint key as two unsigned 32-bit halves
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        self._high, self._low = unsigned >> 32, unsigned & 0xFFFF_FFFF

    def _prepare(self, conn: sa.Connection) -> None:
        if conn.dialect.server_version_info and conn.dialect.server_version_info >= (14,):
            conn.exec_driver_sql("SET idle_session_timeout = 0")  # the lock must not time out

    def _try_lock(self, conn: sa.Connection) -> bool:
        return bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(self._key))).scalar_one())

    def _unlock(self, conn: sa.Connection) -> None:
        conn.execute(sa.select(sa.func.pg_advisory_unlock(self._key)))

    def _session(self, conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one())

    def _holder_session(self, conn: sa.Connection) -> int | None:
        pid = conn.execute(
            sa.text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
            ),
            {"high": self._high, "low": self._low},
        ).scalar()
        return None if pid is None else int(pid)


class _MariaDbLock(_ServerLock):
    def __init__(self, engine: sa.Engine, run_id: str, holder: str) -> None:
        super().__init__(engine, run_id, holder)
        # GET_LOCK names are server-wide and at most 64 characters: hash the database and run
        scope = f"{engine.url.database}/{run_id}"
        self._name = "swmail:" + _digest(scope).hex()[:48]

    def _prepare(self, conn: sa.Connection) -> None:
        # the default wait_timeout (8 h) would drop an idle lock connection during a long run
        conn.exec_driver_sql("SET SESSION wait_timeout = 31536000")

    def _try_lock(self, conn: sa.Connection) -> bool:
        return bool(conn.execute(sa.select(sa.func.get_lock(self._name, 0))).scalar_one() == 1)

    def _unlock(self, conn: sa.Connection) -> None:
        conn.execute(sa.select(sa.func.release_lock(self._name)))

    def _session(self, conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.connection_id())).scalar_one())

    def _holder_session(self, conn: sa.Connection) -> int | None:
        session = conn.execute(sa.select(sa.func.is_used_lock(self._name))).scalar()
        return None if session is None else int(session)


# --- SQLite: an OS lock on a file beside the database --------------------------------------------


def lock_file_path(database: Path, run_id: str) -> Path:
    """`<db>.<hash>.lock`, beside the database so that it is on the same machine and disk."""
    return database.with_name(f"{database.name}.{_digest(run_id).hex()[:16]}.lock")


class _FileLock(RunLock):
    def __init__(self, path: Path, run_id: str, holder: str) -> None:
        super().__init__(run_id, holder)
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        # never deleted: unlinking a lock file lets two processes lock two different files
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + HOLDER_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read_holder(fd)
                if holder is not None or time.monotonic() >= deadline:
                    os.close(fd)
                    raise _locked(
                        self.run_id, holder or f"a process that has not written {self.path} yet"
                    ) from None
                time.sleep(HOLDER_POLL_SECONDS)
                continue
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.holder}\n".encode(), 0)
            return

    @staticmethod
    def _read_holder(fd: int) -> str | None:
        """The holder's line, unless it is empty or names a dead process (a stale file)."""
        text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
        match = _PID.search(text)
        if not text or match is None or not _pid_alive(int(match.group(1))):
            return None
        return text.splitlines()[0]

    def still_held(self) -> bool:
        return self._fd is not None and not self._released

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


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
        file_lock = _FileLock(lock_file_path(database.resolve(), run_id), run_id, holder)
        file_lock.acquire()
        return file_lock
    server_lock: _ServerLock
    if name == "postgresql":
        server_lock = _PostgresLock(engine, run_id, holder)
    elif name in ("mysql", "mariadb"):
        server_lock = _MariaDbLock(engine, run_id, holder)
    else:
        raise NotImplementedError(f"the ledger does not support {name}")
    server_lock.acquire(now)
    return server_lock
