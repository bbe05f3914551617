"""Several senders drain one run: each delivery is claimed exactly once (SPEC §7 `worker`).

On PostgreSQL and MariaDB the claim skips rows another transaction has locked instead of
waiting for it (`FOR UPDATE SKIP LOCKED`); SQLite serializes writers, so there the claim is one
write statement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from jobs.ledger import DeliveryResult, DeliveryStatus, begin_pass, claim, record, stats, upgrade
from jobs.ledger.models import DeliveryRow
from jobs.source.engine import make_engine
from tests.ledger.conftest import freeze

SERVERS = [
    pytest.param("pg_url", marks=pytest.mark.postgres, id="postgresql"),
    pytest.param("mariadb_url", marks=pytest.mark.mariadb, id="mariadb"),
]


@pytest.fixture(params=SERVERS)
def server_ledger(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    engine = make_engine(str(request.getfixturevalue(request.param)))
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def in_thread(work: Callable[[], list[int]]) -> list[int]:
    """Run `work` in another thread; fail (instead of hanging) if it waits on a row lock."""
    out: list[list[int]] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the claim waited for rows another transaction holds"
    return out[0]


def test_a_claim_skips_rows_locked_by_another_transaction(server_ledger: sa.Engine) -> None:
    run = freeze(server_ledger, 12)
    pass_no = begin_pass(server_ledger, run).pass_no
    with server_ledger.connect() as other:
        transaction = other.begin()
        # another worker is in the middle of its claim: it holds seq 1-5
        held = (
            other.execute(
                sa.select(DeliveryRow.seq)
                .where(DeliveryRow.run_pk == run.pk)
                .order_by(DeliveryRow.seq)
                .limit(5)
                .with_for_update()
            )
            .scalars()
            .all()
        )
        assert held == [1, 2, 3, 4, 5]
        got = in_thread(
            lambda: [c.delivery.seq for c in claim(server_ledger, run, pass_no, "w2", 5)]
        )
        transaction.rollback()
    assert got == [6, 7, 8, 9, 10]


def test_concurrent_workers_claim_disjoint_sets(db_url: str, ledger: sa.Engine) -> None:
    total = 120
    run = freeze(ledger, total)
    pass_no = begin_pass(ledger, run).pass_no
    start = threading.Barrier(3)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        engine = make_engine(db_url)  # its own connections, as a separate process would have
        mine: list[int] = []
        try:
            start.wait()
            while batch := claim(engine, run, pass_no, name, 4):
                mine += [c.delivery.seq for c in batch]
                record(
                    engine, [DeliveryResult(c, DeliveryStatus.SENT, 1, 250, "ok") for c in batch]
                )
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)
        finally:
            claimed[name] = mine
            engine.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    every = [seq for seqs in claimed.values() for seq in seqs]
    assert sorted(every) == list(range(1, total + 1))  # each once: disjoint and complete
    with ledger.connect() as conn:
        assert stats(conn, run).counts == {DeliveryStatus.SENT: total}
