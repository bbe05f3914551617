"""SQLite: an OS lock (`flock`) on a file beside the database, dropped by the kernel with the
process. SQLite lives on one machine, so a host-local lock is enough there (and only there).
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path

from jobs.ledger.lock.base import (
    HOLDER_POLL_SECONDS,
    HOLDER_WAIT_SECONDS,
    RunLock,
    digest,
    locked,
    pid_alive,
)

__all__ = ["FileLock", "lock_file_path"]

_PID = re.compile(r"\bpid (\d+)\b")


def lock_file_path(database: Path, run_id: str) -> Path:
    """`<db>.<hash>.lock`, beside the database so that it is on the same machine and disk."""
    return database.with_name(f"{database.name}.{digest(run_id).hex()[:16]}.lock")


class FileLock(RunLock):
    def __init__(self, path: Path, run_id: str, holder: str) -> None:
        super().__init__(run_id, holder)
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        # never deleted: unlinking a lock file lets two processes lock two different files
        # owner-only like the database beside it (issue 6); never through a planted symlink
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + HOLDER_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read_holder(fd)
                if holder is not None or time.monotonic() >= deadline:
                    os.close(fd)
                    raise locked(
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
        if not text or match is None or not pid_alive(int(match.group(1))):
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
