"""A counts-only resolution on PostgreSQL in several processes, one snapshot (issue 10).

`resolve` and approvals want counts. One process spends most of a million customers' time in
Python, deciding candidates one by one, while the second core only serves the database; the
PostgreSQL scan it is measured against gets its rows for little client CPU. Here the customers
are cut into chunks of consecutive corp_ids, and worker processes resolve the chunks, each
with the same `Resolver` and fast path as one process, reading the exported snapshot of this
process's transaction (`jobs.source.engine.joined_snapshot`): all see one state of the data.

Dedupe is the only decision that crosses a chunk: a chunk's `send` row is `merged` when an
earlier chunk already has its address. So a worker returns, with its counts, the key and
include code of each of its `send` rows in order, and this process feeds them, chunk by chunk
in corp_id order, to its own `Deduper` (`Deduper.absorb`), which turns a repeated key's send
into a merge; partners come last, here, as in one process. Every hash decision is proven like
a one-process count (`jobs.resolution.spill.SpillKeys`), in the workers for their own merges
and here for the ones across chunks; should any proof fail, the caller resolves again in one
process with its deliveries kept.

SQLite has no snapshot another connection can join, and MariaDB none another session can
import, so they resolve in one process (SQLite meets the target there; see README).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from jobs.resolution.spill import SpillKeys
from jobs.source.engine import joined_snapshot
from jobs.source.loader import iter_customer_rows, load_suppression_keys
from resolver.model import Audience, CampaignPolicy, Decision, Reason, Warning
from resolver.resolve import Resolver

if TYPE_CHECKING:
    from jobs.resolution.pipeline import Summary

__all__ = [
    "CHUNK_CUSTOMERS",
    "MIN_CUSTOMERS",
    "ChunkResult",
    "WorkersFailed",
    "parallel_workers",
    "resolve_chunks",
]

MIN_CUSTOMERS = 300_000
"""Below this many customers one process is faster: starting the workers costs about 2 s
(PostgreSQL 100k customers: 2.7-2.9 s in workers, 2.3-2.5 s in one process)."""
CHUNK_CUSTOMERS = 20_000
"""Customers per chunk: enough to pay for a task, few enough to share the work evenly."""
_MAX_WORKERS = 4

_SEND, _MERGED = Decision.SEND, Decision.MERGED
# Include codes travel back as one byte each: an enum member is unpickled by a Python call.
_CODES = tuple(Reason)
_CODE_OF = {code: i for i, code in enumerate(_CODES)}
_CUSTOMER = Audience.CUSTOMER
_DUPLICATE_ADDRESS = Reason.DUPLICATE_ADDRESS


class WorkersFailed(RuntimeError):
    """The worker processes could not count (start, connect, join the snapshot or resolve).

    Counting in workers only saves time: the caller counts again in one process.
    """


def parallel_workers(engine: sa.Engine, customers: int) -> int:
    """How many worker processes a counts-only resolution of `customers` should use (0: none)."""
    if engine.dialect.name != "postgresql" or customers < MIN_CUSTOMERS:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if not cores or cores < 2 else min(cores, _MAX_WORKERS)


@dataclass
class ChunkResult:
    """One chunk's counts, warnings and `send` rows (key, include code), in resolution order."""

    def sends(self) -> Iterator[tuple[str, Reason]]:
        """The (key, include code) of each send row, in order."""
        codes = _CODES
        return zip(self.keys, [codes[i] for i in self.includes], strict=True)

    summary: Summary  # unfinished: `Summary.merge` adds it up
    warnings: list[Warning] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # of the send rows, in order
    includes: bytearray = field(default_factory=bytearray)  # their include codes (`_CODES`)
    proven: bool = True
    customers: int = 0


@dataclass
class _Worker:
    """A worker process's reading transaction (kept open by `stack`) and its rule inputs."""

    conn: sa.Connection
    policy: CampaignPolicy
    as_of: date
    suppressed: set[str]
    already_sent: frozenset[str]
    stack: ExitStack


_STATE: _Worker | None = None


def _start_worker(
    url: str,
    snapshot_id: str,
    policy: CampaignPolicy,
    as_of: date,
    extra_suppressed: frozenset[str],
    already_sent: frozenset[str],
) -> None:
    """Join the coordinator's snapshot once per worker process; it lasts the whole pool."""
    from jobs.source.engine import make_engine

    global _STATE
    stack = ExitStack()
    engine = make_engine(url, create=False)
    stack.callback(engine.dispose)
    conn = stack.enter_context(joined_snapshot(engine, snapshot_id))
    suppressed = load_suppression_keys(conn)
    suppressed.update(extra_suppressed)
    _STATE = _Worker(conn, policy, as_of, suppressed, already_sent, stack)


def _resolve_chunk(chunk: tuple[str, str | None]) -> ChunkResult:
    """Resolve one chunk of customers as one process would, counts only."""
    from jobs.resolution.pipeline import Summary  # it imports this module

    state = _STATE
    if state is None:
        raise RuntimeError("worker not started")
    keys = SpillKeys()
    try:
        resolver = Resolver(
            state.policy, state.as_of, state.suppressed, state.already_sent, index=keys
        )
        result = ChunkResult(Summary())
        summary, warnings = result.summary, result.warnings
        keys_of, includes = result.keys, result.includes
        products = state.policy.products is not None
        for rows in iter_customer_rows(state.conn, products=products, chunk=chunk):
            decided = resolver.feed_customer_rows(rows)
            summary.add_rows(decided.rows, decided.excluded, decided.warnings)
            warnings.extend(decided.warnings)
            # (decision, reasons, ..., delivery key) by index, as Summary reads them.
            for row in decided.rows:
                if row[0] is _SEND:
                    keys_of.append(cast(str, row[10]))
                    includes.append(_CODE_OF[row[1][0]])
            result.customers += 1
        result.proven = keys.proven()
        return result
    finally:
        keys.close()


def resolve_chunks(
    url: str,
    snapshot_id: str,
    starts: Sequence[str],
    workers: int,
    policy: CampaignPolicy,
    as_of: date,
    extra_suppressed: frozenset[str],
    already_sent: frozenset[str],
) -> Generator[ChunkResult, None, None]:
    """Each chunk's result in corp_id order, resolved by `workers` processes.

    The coordinator's transaction (whose snapshot is `snapshot_id`) must stay open until the
    iterator is exhausted or closed; closing it stops the workers.
    """
    chunks = [(start, stop) for start, stop in zip(starts, [*starts[1:], None], strict=True)]
    # spawn: a fresh interpreter, so no lock, thread or connection of this process is copied.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(url, snapshot_id, policy, as_of, extra_suppressed, already_sent),
    ) as pool:
        # A few chunks ahead of the one awaited, not all: a finished chunk's keys stay in this
        # process until it is absorbed, and a million customers' would not fit the budget.
        waiting = iter(chunks)
        pending: deque[Future[ChunkResult]] = deque(
            pool.submit(_resolve_chunk, chunk) for chunk in islice(waiting, 2 * workers)
        )
        try:
            while pending:
                result = pending.popleft().result()
                for chunk in islice(waiting, 1):
                    pending.append(pool.submit(_resolve_chunk, chunk))
                yield result
        finally:
            for future in pending:
                future.cancel()


def merged_tally(include: Reason) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The tally keys a customer's `send` row moves from and to when an earlier chunk has it."""
    return (_SEND, _CUSTOMER, (include,)), (_MERGED, _CUSTOMER, (include, _DUPLICATE_ADDRESS))
