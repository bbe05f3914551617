"""Resolution from the database: stream accounts into the pure resolver, count what it decides.

The source database is read in one consistent snapshot, customers page by page; only the
resolver's dedupe state and the deliveries stay in memory, never the tables. Callers receive each
account's outcome as it is decided (the dry run writes audit rows straight to its CSV file).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.progress import Progress
from jobs.source.engine import snapshot
from jobs.source.loader import iter_customer_accounts, iter_partner_accounts, load_suppression_keys
from jobs.source.models import Customer as CustomerRow
from jobs.source.models import check_source_schema
from resolver.model import Decided, Delivery, Warning
from resolver.resolve import AccountOutcome, Resolver, resolution_order

__all__ = ["Resolved", "Summary", "resolve_campaign", "stream_resolution"]


@dataclass
class Summary:
    """What a resolution decided, in counts (the `resolve` command's output)."""

    candidates: int = 0
    accounts: int = 0
    excluded: int = 0
    deliveries: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    by_audience: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, outcome: AccountOutcome) -> None:
        self.accounts += 1
        self.excluded += len(outcome.excluded)
        for row in outcome.rows:
            self.candidates += 1
            self.decisions[row.decision.value] += 1
            self.by_audience[(row.candidate.audience.value, row.decision.value)] += 1
            for reason in row.reasons:
                self.reasons[reason.value] += 1
        for warning in outcome.warnings:
            self.warnings[warning.code.value] += 1

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


@dataclass
class Resolved:
    """What a resolution produced besides its audit rows; complete once the rows are consumed."""

    deliveries: list[Delivery] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)


OutcomeSink = Callable[[AccountOutcome], None]


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
) -> Iterator[Decided]:
    """Yield every audit row of `campaign` as of `as_of`, in resolution order.

    The rows are never all in memory: the first `run` writes them straight into the ledger.
    `into` receives the deliveries, warnings and counts; they are complete when the generator
    is exhausted. `extra_suppressed` are dedupe keys suppressed by the job itself (the ledger's
    hard bounces): §7, the effective suppression list is the union with the source data's.
    `already_sent`: delivery keys earlier runs of the campaign sent (§4 ALREADY_SENT).
    """
    started = time.perf_counter()
    summary = into.summary
    check_source_schema(engine)

    def take(outcome: AccountOutcome) -> None:
        summary.add(outcome)
        into.warnings.extend(outcome.warnings)
        if on_outcome is not None:
            on_outcome(outcome)

    with snapshot(engine) as conn:
        suppressed = load_suppression_keys(conn)
        suppressed.update(extra_suppressed)
        resolver = Resolver(campaign.policy, as_of, suppressed, already_sent)
        total = conn.execute(sa.select(sa.func.count()).select_from(CustomerRow)).scalar_one()
        bar = Progress("resolving customers", total) if progress else None
        for account in iter_customer_accounts(conn):
            outcome = resolver.feed_customer(account)
            take(outcome)
            yield from outcome.rows
            if bar is not None:
                bar.advance()
        if bar is not None:
            bar.close()
        partner_outcomes = resolver.feed_partners(iter_partner_accounts(conn))
    for outcome in partner_outcomes:
        take(outcome)
    # Audit rows of partners in resolution order (every partner contact before any certified
    # implementer), as the deliveries are numbered.
    yield from sorted(
        (row for outcome in partner_outcomes for row in outcome.rows),
        key=lambda row: resolution_order(row.candidate),
    )
    into.deliveries = resolver.finish()
    summary.deliveries = len(into.deliveries)
    summary.seconds = time.perf_counter() - started


def resolve_campaign(
    engine: sa.Engine,
    campaign: Campaign,
    as_of: date,
    *,
    extra_suppressed: Iterable[str] = (),
    already_sent: Container[str] = frozenset(),
    on_outcome: OutcomeSink | None = None,
    on_row: Callable[[Decided], None] | None = None,
    progress: bool = True,
) -> Resolved:
    """Resolve `campaign` as of `as_of`, handing each audit row to `on_row` as it is decided."""
    resolved = Resolved()
    for row in stream_resolution(
        engine,
        campaign,
        as_of,
        resolved,
        extra_suppressed=extra_suppressed,
        already_sent=already_sent,
        on_outcome=on_outcome,
        progress=progress,
    ):
        if on_row is not None:
            on_row(row)
    return resolved
