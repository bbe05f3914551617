"""Resolution from the database: stream accounts into the resolver, count what it decides.

The source database is read in one consistent snapshot, customers page by page. Memory stays
flat whatever the data set's size (issue 10): audit rows stream to the caller (the dry run's CSV
file, the ledger's freezing transaction), deliveries to a temporary file
(`jobs.resolution.spill`), and only the dedupe index of key hashes grows with the deliveries.
A counts-only resolution (`resolve`, approvals) keeps no delivery: it decides from the hashes
and proves at the end, from the keys it logged, that no two of them collided.

Customers are decided from their rows (`resolver.fast`, with the pure path for the accounts
that need it). `pure=True`, and any caller that wants each account's `AccountOutcome`
(`explain`), takes the pure path for every account: the same decisions, built as values.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.i18n import N_
from jobs.progress import Progress
from jobs.resolution import parallel
from jobs.resolution.spill import SpillKeys, SpillStore
from jobs.source.engine import export_snapshot, snapshot
from jobs.source.loader import (
    chunk_starts,
    iter_customer_accounts,
    iter_customer_rows,
    iter_partner_accounts,
    load_suppression_keys,
)
from jobs.source.models import Customer as CustomerRow
from jobs.source.models import check_source_schema
from resolver.model import AuditRow, Decision, Delivery, Reason, Warning
from resolver.resolve import AccountOutcome, Resolver, audit_row, resolution_order

__all__ = ["Deliveries", "Resolved", "Summary", "resolve_campaign", "stream_resolution"]

log = logging.getLogger(__name__)


assert AuditRow._fields[:3] == ("decision", "reasons", "audience")  # as `add_rows` reads them
_TALLY_KEY = itemgetter(0, 2, 1)  # by index: a field name is a Python-level lookup
_TALLY_BATCH = 10_000


@dataclass
class Summary:
    """What a resolution decided, in counts (the `resolve` command's output).

    Rows are tallied by (decision, audience, reasons) while resolving, one increment a row, and
    spread into the per-decision, per-audience and per-reason counts by `finish()`.
    """

    candidates: int = 0
    accounts: int = 0
    excluded: int = 0
    deliveries: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    by_audience: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    tally: Counter[tuple[Decision, str, tuple[Reason, ...]]] = field(default_factory=Counter)
    _untallied: list[tuple[Decision, str, tuple[Reason, ...]]] = field(
        default_factory=list, repr=False, compare=False
    )

    def add_rows(
        self, rows: Iterable[AuditRow], excluded: int, warnings: Iterable[Warning]
    ) -> None:
        """Count one account's audit rows, candidates outside the filters and warnings."""
        self.accounts += 1
        self.excluded += excluded
        # (decision, audience, reasons) of each row, counted in C a batch of accounts at a
        # time: `Counter.update` costs a few Python-level checks per call.
        untallied = self._untallied
        untallied.extend(map(_TALLY_KEY, rows))
        if len(untallied) >= _TALLY_BATCH:
            self.tally.update(untallied)
            untallied.clear()
        for warning in warnings:
            self.warnings[warning.code.value] += 1

    def merge(self, other: Summary) -> None:
        """Add the counts of another, unfinished summary (a chunk of a parallel resolution)."""
        self.accounts += other.accounts
        self.excluded += other.excluded
        self.tally.update(other.tally)
        self.tally.update(other._untallied)
        self.warnings.update(other.warnings)

    def add(self, outcome: AccountOutcome) -> None:
        """Count one account's outcome (the pure path)."""
        self.add_rows(
            (audit_row(row) for row in outcome.rows), len(outcome.excluded), outcome.warnings
        )

    def finish(self) -> None:
        """Spread the tally into the counts by decision, audience and reason."""
        self.tally.update(self._untallied)
        self._untallied.clear()
        for (decision, audience, reasons), n in self.tally.items():
            self.candidates += n
            self.decisions[decision.value] += n
            self.by_audience[(str(audience), decision.value)] += n
            for reason in reasons:
                self.reasons[reason.value] += n
        self.tally.clear()

    def as_json(self) -> dict[str, Any]:
        audiences: dict[str, dict[str, int]] = {}
        for (audience, decision), n in sorted(self.by_audience.items()):
            audiences.setdefault(audience, {})[decision] = n
        return {
            "accounts": self.accounts,
            "candidates": self.candidates,
            "deliveries": self.deliveries,
            "excluded_by_filters": self.excluded,
            "decisions": dict(sorted(self.decisions.items())),
            "audiences": audiences,
            "reasons": dict(sorted(self.reasons.items())),
            "warnings": dict(sorted(self.warnings.items())),
            "seconds": round(self.seconds, 3),
        }


class Deliveries:
    """The deliveries of a finished resolution, read from its store in seq order on each pass."""

    def __init__(self, resolver: Resolver | None = None) -> None:
        self._resolver = resolver

    def __iter__(self) -> Iterator[Delivery]:
        if self._resolver is None:
            return iter(())
        return self._resolver.finish()

    def __len__(self) -> int:
        return 0 if self._resolver is None else self._resolver.delivery_count


@dataclass
class Resolved:
    """What a resolution produced besides its audit rows; complete once the rows are consumed.

    `deliveries` streams from a temporary file: read it before `close()`, which removes it.
    """

    deliveries: Deliveries = field(default_factory=Deliveries)
    warnings: list[Warning] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    store: SpillStore | SpillKeys | None = None

    def close(self) -> None:
        """Remove the deliveries' temporary file."""
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


OutcomeSink = Callable[[AccountOutcome], None]

# Young-generation collections every 100,000 container allocations instead of 700: a resolution
# allocates millions of short-lived tuples and creates no reference cycles, and the collector
# took about a quarter of `resolve`'s CPU (bench/resolve.py, CPU seconds, issue 10).
_FEWER_COLLECTIONS = 100_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the collector's first threshold while resolving; restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], _FEWER_COLLECTIONS), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _account_rows(
    engine: sa.Engine,
    campaign: Campaign,
    as_of: date,
    into: Resolved,
    *,
    extra_suppressed: Iterable[str],
    already_sent: Container[str],
    on_outcome: OutcomeSink | None,
    progress: bool,
    pure: bool,
    keys: SpillKeys | None,
    in_parallel: bool = True,
) -> Iterator[Sequence[AuditRow]]:
    """Each customer's audit rows, then the partners' rows, in resolution order.

    Per account rather than per row: a counts-only resolution hands no row on, and a million
    customers are three million rows. `keys`: counts only (`SpillKeys`), no delivery kept.
    """
    started = time.perf_counter()
    summary = into.summary
    check_source_schema(engine)

    def take(outcome: AccountOutcome) -> None:
        summary.add(outcome)
        into.warnings.extend(outcome.warnings)
        if on_outcome is not None:
            on_outcome(outcome)

    store = SpillStore() if keys is None else None
    into.store = store or keys
    with _fewer_collections(), snapshot(engine) as conn:
        suppressed = load_suppression_keys(conn)
        suppressed.update(extra_suppressed)
        resolver = Resolver(
            campaign.policy, as_of, suppressed, already_sent, store=store, index=keys
        )
        total = conn.execute(sa.select(sa.func.count()).select_from(CustomerRow)).scalar_one()
        bar = Progress(N_("resolving customers"), total) if progress else None
        workers = 0
        if in_parallel and keys is not None and not pure and on_outcome is None:
            # Counts only, no rows asked for: other processes may count chunks of customers.
            sets = isinstance(already_sent, frozenset | set)
            workers = parallel.parallel_workers(engine, total) if sets else 0
        if workers:
            assert keys is not None and isinstance(already_sent, frozenset | set)
            _count_in_parallel(
                engine,
                conn,
                campaign,
                as_of,
                resolver,
                into,
                keys,
                workers=workers,
                extra_suppressed=frozenset(extra_suppressed),
                already_sent=frozenset(already_sent),
                bar=bar,
            )
        elif pure or on_outcome is not None:
            for account in iter_customer_accounts(conn):
                outcome = resolver.feed_customer(account)
                take(outcome)
                yield [audit_row(row) for row in outcome.rows]
                if bar is not None:
                    bar.advance()
        else:
            products = campaign.policy.products is not None
            for rows in iter_customer_rows(conn, products=products):
                result = resolver.feed_customer_rows(rows)
                summary.add_rows(result.rows, result.excluded, result.warnings)
                into.warnings.extend(result.warnings)
                yield result.rows
                if bar is not None:
                    bar.advance()
        if bar is not None:
            bar.close()
        partner_outcomes = resolver.feed_partners(iter_partner_accounts(conn))
    for outcome in partner_outcomes:
        take(outcome)
    # Audit rows of partners in resolution order (every partner contact before any certified
    # implementer), as the deliveries are numbered.
    yield [
        audit_row(row)
        for row in sorted(
            (row for outcome in partner_outcomes for row in outcome.rows),
            key=lambda row: resolution_order(row.candidate),
        )
    ]
    into.deliveries = Deliveries(resolver if keys is None else None)
    summary.deliveries = resolver.delivery_count
    summary.finish()
    summary.seconds = time.perf_counter() - started


def _count_in_parallel(
    engine: sa.Engine,
    conn: sa.Connection,
    campaign: Campaign,
    as_of: date,
    resolver: Resolver,
    into: Resolved,
    keys: SpillKeys,
    *,
    workers: int,
    extra_suppressed: frozenset[str],
    already_sent: frozenset[str],
    bar: Progress | None,
) -> None:
    """Count every customer in worker processes (`jobs.resolution.parallel`), in order."""
    summary = into.summary
    tally = summary.tally
    snapshot_id = export_snapshot(conn)
    starts = chunk_starts(conn, parallel.CHUNK_CUSTOMERS)
    url = engine.url.render_as_string(hide_password=False)
    log.info("resolving %d chunks of customers in %d processes", len(starts), workers)
    results = parallel.resolve_chunks(
        url,
        snapshot_id,
        starts,
        workers,
        campaign.policy,
        as_of,
        extra_suppressed,
        already_sent,
    )
    with closing(results):
        while True:
            try:
                result = next(results)
            except StopIteration:
                return
            except Exception as exc:  # the caller counts again in one process
                raise parallel.WorkersFailed(f"{type(exc).__name__}: {exc}") from exc
            summary.merge(result.summary)
            into.warnings.extend(result.warnings)
            # A send row whose address an earlier chunk has is a merged row.
            for include in resolver.absorb_customers(result.sends()):
                send, merged = parallel.merged_tally(include)
                tally[send] -= 1
                tally[merged] += 1
            if not result.proven:
                keys.refute()
            if bar is not None:
                bar.advance(result.customers)


def stream_resolution(
    engine: sa.Engine,
    campaign: Campaign,
    as_of: date,
    into: Resolved,
    *,
    extra_suppressed: Iterable[str] = (),
    already_sent: Container[str] = frozenset(),
    on_outcome: OutcomeSink | None = None,
    progress: bool = True,
    pure: bool = False,
) -> Iterator[AuditRow]:
    """Yield every audit row of `campaign` as of `as_of`, in resolution order.

    The rows are never all in memory: the first `run` writes them straight into the ledger.
    `into` receives the deliveries, warnings and counts; they are complete when the generator
    is exhausted, and the caller closes `into` when done with its deliveries.
    `extra_suppressed` are dedupe keys suppressed by the job itself (the ledger's hard bounces):
    §7, the effective suppression list is the union with the source data's.
    `already_sent`: delivery keys earlier runs of the campaign sent (§4 ALREADY_SENT).
    """
    for rows in _account_rows(
        engine,
        campaign,
        as_of,
        into,
        extra_suppressed=extra_suppressed,
        already_sent=already_sent,
        on_outcome=on_outcome,
        progress=progress,
        pure=pure,
        keys=None,
    ):
        yield from rows


def resolve_campaign(
    engine: sa.Engine,
    campaign: Campaign,
    as_of: date,
    *,
    extra_suppressed: Iterable[str] = (),
    already_sent: Container[str] = frozenset(),
    on_outcome: OutcomeSink | None = None,
    on_row: Callable[[AuditRow], None] | None = None,
    progress: bool = True,
    pure: bool = False,
    keep_deliveries: bool = True,
    in_parallel: bool = True,
) -> Resolved:
    """Resolve `campaign` as of `as_of`, handing each audit row to `on_row` as it is decided.

    `keep_deliveries=False`: counts only (`resolve`, approvals), with no audit row to hand on
    and no delivery kept; the counts are those of the full resolution (see `SpillKeys`), and
    on PostgreSQL worker processes may count (`jobs.resolution.parallel`; `in_parallel=False`:
    never).
    The caller closes the result (or uses it in a `with` block) when done with its deliveries.
    """
    if not keep_deliveries and on_row is not None:
        raise ValueError("a counts-only resolution has no audit rows to hand on")
    # Read once: a second attempt below (one process, or deliveries kept) reads them again.
    extra_suppressed = frozenset(extra_suppressed)
    again = partial(
        resolve_campaign,
        engine,
        campaign,
        as_of,
        extra_suppressed=extra_suppressed,
        already_sent=already_sent,
        progress=progress,
    )
    resolved = Resolved()
    keys = None if keep_deliveries else SpillKeys()
    try:
        for rows in _account_rows(
            engine,
            campaign,
            as_of,
            resolved,
            extra_suppressed=extra_suppressed,
            already_sent=already_sent,
            on_outcome=on_outcome,
            progress=progress,
            pure=pure,
            keys=keys,
            in_parallel=in_parallel,
        ):
            if on_row is not None:
                for row in rows:
                    on_row(row)
        if keys is not None and not keys.proven():
            # Two keys shared a 60-bit hash: next to impossible, but the counts must be exact,
            # so resolve again keeping the deliveries, whose store compares whole keys.
            log.warning("two dedupe keys shared a hash; resolving again with every delivery kept")
            resolved.close()
            return again(on_outcome=on_outcome, pure=pure)
    except parallel.WorkersFailed as exc:
        log.warning("counting in worker processes failed (%s); counting in one process", exc)
        resolved.close()
        return again(keep_deliveries=False, in_parallel=False)
    except BaseException:
        resolved.close()
        raise
    return resolved
