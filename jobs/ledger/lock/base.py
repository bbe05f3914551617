"""What every run lock shares: the holder's description, the `RunLock` interface, and the
session-level lock of the two server databases (subclassed per dialect in `postgresql.py` and
`mariadb.py`; SQLite's file lock is in `sqlite.py`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import sqlalchemy as sa

from jobs.errors import RunLocked
from jobs.i18n import _, tr
from jobs.ledger.codec import utc_now
from jobs.ledger.models import RunLockRow, RunRow

__all__ = [
    "HOLDER_POLL_SECONDS",
    "HOLDER_WAIT_SECONDS",
    "RunLock",
    "ServerLock",
    "digest",
    "holder_description",
    "locked",
    "pid_alive",
]

# A loser may look while the winner is between taking the lock and recording itself.
HOLDER_WAIT_SECONDS = 2.0
HOLDER_POLL_SECONDS = 0.02

_HOLDER = re.compile(r"host (\S+) pid (\d+)\b")


def holder_description(now: datetime | None = None) -> str:
    """ "host X pid N since T": what a loser prints about this process."""
    since = (utc_now() if now is None else now).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"host {socket.gethostname()} pid {os.getpid()} since {since}"


def digest(text: str) -> bytes:
    return hashlib.sha256(f"swmail-run-lock:{text}".encode()).digest()


def pid_alive(pid: int) -> bool:
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
        and not pid_alive(int(match.group(2)))
    )


def locked(run_id: str, holder: str) -> RunLocked:
    return RunLocked(
        tr("run {run_id} is held by {holder}", run_id=run_id, holder=holder), holder=holder
    )


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


class ServerLock(RunLock):
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
                raise locked(self.run_id, holder)
            if time.monotonic() >= deadline:
                unnamed = (
                    tr("database session {session}", session=session)
                    if session
                    else _("another coordinator")
                )
                raise locked(self.run_id, holder or unnamed)
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
        except sa.exc.SQLAlchemyError:
            # the session is gone (killed, network): the server dropped the lock with it, and
            # the error that stopped the holder is the one to report
            pass
        finally:
            # never hand a connection that might still hold the lock back to the pool
            conn.invalidate()
            conn.close()
