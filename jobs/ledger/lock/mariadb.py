"""MariaDB: a named server lock (`GET_LOCK`) on a dedicated connection."""

from __future__ import annotations

import sqlalchemy as sa

from jobs.ledger.lock.base import ServerLock, digest

__all__ = ["MariaDbLock"]


class MariaDbLock(ServerLock):
    def __init__(self, engine: sa.Engine, run_id: str, holder: str) -> None:
        super().__init__(engine, run_id, holder)
        # GET_LOCK names are server-wide and at most 64 characters: hash the database and run
        scope = f"{engine.url.database}/{run_id}"
        self._name = "swmail:" + digest(scope).hex()[:48]

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
