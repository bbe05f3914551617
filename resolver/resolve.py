"""Resolution (SPEC §4): every candidate's decision, the deliveries and the warnings of a run.

`Resolver` takes customers one at a time so that a caller can stream a million of them from
the database without holding their rows: only the dedupe state stays in memory. The feeding
order is what makes "first seen is `send`" equal §4's deterministic choice (audience customer,
partner, implementation_partner; then account id; then source order; then person id), so the
resolver refuses any other order instead of silently choosing a different `send` row.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from resolver.candidates import (
    SOURCE_ORDER,
    customer_candidates,
    non_candidates,
    partner_candidates,
)
from resolver.dedupe import Deduper, DeliveryStore, KeyLog
from resolver.fast import CustomerResult, CustomerRows, FastCustomers, customer_account
from resolver.filters import customer_exclusion, exclusion
from resolver.model import (
    AccountKind,
    Audience,
    AuditRow,
    CampaignPolicy,
    Candidate,
    CustomerAccount,
    Decided,
    Decision,
    Delivery,
    Excluded,
    PartnerAccount,
    Reason,
    User,
    Warning,
)
from resolver.rules import INCLUDE_CODE, RuleContext, skip_reasons
from resolver.warnings import admin_after_cutoff, candidate_warnings, unreachable_customer

__all__ = [
    "AUDIENCE_ORDER",
    "AccountOutcome",
    "Resolution",
    "Resolver",
    "audit_row",
    "resolution_order",
    "resolve_all",
]

AUDIENCE_ORDER: dict[Audience, int] = {audience: i for i, audience in enumerate(Audience)}
"""Position of each audience in §4's dedupe preference order."""


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """Everything the resolution says about one customer or partner."""

    account_id: str
    kind: AccountKind
    rows: tuple[Decided, ...]  # audit rows, in resolution order
    excluded: tuple[Excluded, ...]  # candidates outside the campaign's filters (not audit rows)
    warnings: tuple[Warning, ...]
    non_candidates: tuple[User, ...] = ()  # users who are not recipients (for `explain`)


@dataclass(frozen=True, slots=True)
class Resolution:
    """A whole run resolved at once (`resolve_all`)."""

    rows: tuple[Decided, ...]
    excluded: tuple[Excluded, ...]
    deliveries: tuple[Delivery, ...]
    warnings: tuple[Warning, ...]


def resolution_order(c: Candidate) -> tuple[int, str, int, str]:
    """§4's deterministic order: audience, account id, source order, person id."""
    return AUDIENCE_ORDER[c.audience], c.account_id, SOURCE_ORDER[c.source], c.person_id


def audit_row(row: Decided) -> AuditRow:
    """The plain audit row of a decided candidate."""
    c = row.candidate
    return AuditRow(
        row.decision,
        row.reasons,
        c.audience,
        c.account_id,
        c.account_name,
        c.source,
        c.person_id,
        c.name,
        c.email,
        row.delivery_email,
        row.delivery_key,
    )


class Resolver:
    """Decides candidates fed in resolution order: customers by corp_id, then all partners."""

    __slots__ = (
        "_ctx",
        "_deduper",
        "_fast",
        "_finished",
        "_last_corp_id",
        "_partners_fed",
        "_policy",
    )

    def __init__(
        self,
        policy: CampaignPolicy,
        as_of: date,
        suppressed: Container[str],
        already_sent: Container[str] = frozenset(),
        *,
        store: DeliveryStore | None = None,
        index: KeyLog | None = None,
    ) -> None:
        self._policy = policy
        self._ctx = RuleContext(
            as_of=as_of, suppressed=suppressed, already_sent=already_sent, dedupe=policy.dedupe
        )
        self._deduper = Deduper(policy.dedupe, store, index=index)
        self._fast = FastCustomers(policy, self._ctx, self._deduper)
        self._last_corp_id: str | None = None
        self._partners_fed = False
        self._finished = False

    def _decide(self, c: Candidate) -> Decided:
        skips = skip_reasons(c, self._ctx)
        if skips:
            return Decided(candidate=c, decision=Decision.SKIP, reasons=skips, skip_reasons=skips)
        return self._deduper.add(c, INCLUDE_CODE[c.source])

    def _next_customer(self, corp_id: str) -> None:
        if self._finished or self._partners_fed:
            raise ValueError(f"customer {corp_id} fed after the partners or after finish()")
        if self._last_corp_id is not None and corp_id <= self._last_corp_id:
            raise ValueError(
                f"customers must be fed in ascending corp_id: {corp_id} after {self._last_corp_id}"
            )
        self._last_corp_id = corp_id

    def feed_customer(self, account: CustomerAccount) -> AccountOutcome:
        """Decide one customer's candidates; customers must come in ascending corp_id."""
        self._next_customer(account.customer.corp_id)
        return self._customer_outcome(account)

    def feed_customer_rows(self, rows: CustomerRows) -> CustomerResult:
        """Decide one customer from its rows (`resolver.fast`); ascending corp_id, as above.

        The same decisions as `feed_customer`, without building the values of an account that
        needs no warning.
        """
        self._next_customer(rows.customer[0])
        fast = self._fast.decide(rows)
        if fast is not None:
            return fast
        outcome = self._customer_outcome(customer_account(rows))
        return CustomerResult(
            tuple(audit_row(row) for row in outcome.rows), len(outcome.excluded), outcome.warnings
        )

    def _customer_outcome(self, account: CustomerAccount) -> AccountOutcome:
        corp_id = account.customer.corp_id
        rows: list[Decided] = []
        excluded: list[Excluded] = []
        warnings: list[Warning] = []
        for c in customer_candidates(account):
            outside = exclusion(c, account, self._policy)
            if outside is not None:
                excluded.append(outside)
                continue
            rows.append(self._decide(c))
            warnings.extend(candidate_warnings(c))

        # Account warnings concern customers inside the campaign's audience and filters only.
        in_campaign = (
            Audience.CUSTOMER in self._policy.audiences
            and customer_exclusion(account, self._policy) is None
        )
        if in_campaign:
            for found in (admin_after_cutoff(account), unreachable_customer(account, rows)):
                if found is not None:
                    warnings.append(found)

        return AccountOutcome(
            account_id=corp_id,
            kind=AccountKind.CUSTOMER,
            rows=tuple(rows),
            excluded=tuple(excluded),
            warnings=tuple(warnings),
            non_candidates=non_candidates(account),
        )

    def feed_partners(self, accounts: Iterable[PartnerAccount]) -> list[AccountOutcome]:
        """Decide every partner contact at once (they are few), after all customers.

        Outcomes come back in partner_id order; a partner's rows are in resolution order.
        """
        if self._finished or self._partners_fed:
            raise ValueError("partners can be fed once, before finish()")
        self._partners_fed = True

        by_id: dict[str, PartnerAccount] = {}
        for account in accounts:
            partner_id = account.partner.partner_id
            if partner_id in by_id:
                raise ValueError(f"partner {partner_id} fed twice")
            by_id[partner_id] = account

        rows: dict[str, list[Decided]] = {partner_id: [] for partner_id in by_id}
        excluded: dict[str, list[Excluded]] = {partner_id: [] for partner_id in by_id}
        warnings: dict[str, list[Warning]] = {partner_id: [] for partner_id in by_id}
        candidates = [c for account in by_id.values() for c in partner_candidates(account)]
        # §4: audience order first, so a partner's contacts precede every certified implementer.
        for c in sorted(candidates, key=resolution_order):
            outside = exclusion(c, None, self._policy)
            if outside is not None:
                excluded[c.account_id].append(outside)
                continue
            rows[c.account_id].append(self._decide(c))
            warnings[c.account_id].extend(candidate_warnings(c))

        return [
            AccountOutcome(
                account_id=partner_id,
                kind=AccountKind.PARTNER,
                rows=tuple(rows[partner_id]),
                excluded=tuple(excluded[partner_id]),
                warnings=tuple(warnings[partner_id]),
            )
            for partner_id in sorted(by_id)
        ]

    def absorb_customers(self, sends: Iterable[tuple[str, Reason]]) -> list[Reason]:
        """Take in the `send` rows of customers counted apart (`Deduper.absorb`), in order."""
        if self._finished or self._partners_fed:
            raise ValueError("customers absorbed after the partners or after finish()")
        return self._deduper.absorb(sends)

    def finish(self) -> Iterator[Delivery]:
        """The deliveries in resolution order, numbered 1..n; nothing can be fed afterwards."""
        self._finished = True
        return self._deduper.deliveries()

    @property
    def delivery_count(self) -> int:
        return len(self._deduper)


def resolve_all(
    customers: Iterable[CustomerAccount],
    partners: Iterable[PartnerAccount],
    policy: CampaignPolicy,
    as_of: date,
    suppressed: Container[str],
    already_sent: Container[str] = frozenset(),
) -> Resolution:
    """Resolve a whole data set held in memory (tests, small data sets, `explain`)."""
    resolver = Resolver(policy, as_of, suppressed, already_sent)
    customer_outcomes = [
        resolver.feed_customer(account)
        for account in sorted(customers, key=lambda account: account.customer.corp_id)
    ]
    partner_outcomes = resolver.feed_partners(partners)
    deliveries = resolver.finish()
    # Rows in resolution order, like the deliveries: every partner's contacts come before any
    # certified implementer (§4 audience order).
    partner_rows = sorted(
        (row for outcome in partner_outcomes for row in outcome.rows),
        key=lambda row: resolution_order(row.candidate),
    )
    outcomes = [*customer_outcomes, *partner_outcomes]
    return Resolution(
        rows=(*(row for outcome in customer_outcomes for row in outcome.rows), *partner_rows),
        excluded=tuple(ex for outcome in outcomes for ex in outcome.excluded),
        deliveries=tuple(deliveries),
        warnings=tuple(w for outcome in outcomes for w in outcome.warnings),
    )
