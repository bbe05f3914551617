"""PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated connection."""

from __future__ import annotations

import sqlalchemy as sa

from jobs.ledger.lock.base import ServerLock, digest

__all__ = ["PostgresLock"]


class PostgresLock(ServerLock):
    def __init__(self, engine: sa.Engine, run_id: str, holder: str) -> None:
        super().__init__(engine, run_id, holder)
        self._key = int.from_bytes(digest(run_id)[:8], "big", signed=True)
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
