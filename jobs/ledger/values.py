"""The plain values that cross the ledger's boundary (SPEC §5, §7).

The sender, the CLI and the audit export see runs and deliveries only as these frozen values, never
as ORM rows or connections, so that a stage cannot reach back into the database behind the
ledger's transactions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from resolver.model import Audience, Decision, DedupeMode, Delivery, DeliveryStatus, Reason, Source

__all__ = [
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "AuditExportRow",
    "ClaimedDelivery",
    "DeliveryResult",
    "DeliveryStatus",
    "PassInfo",
    "RunRecord",
    "RunStats",
]


FINAL_STATUSES: frozenset[DeliveryStatus] = frozenset(
    {DeliveryStatus.SENT, DeliveryStatus.DEFERRED, DeliveryStatus.FAILED}
)
"""What a pass may record for a claimed delivery (`deferred` is final for the pass only)."""

OPEN_STATUSES: frozenset[DeliveryStatus] = frozenset(
    {DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED}
)
"""A run with any delivery in these states is not finished (SPEC §8 exit code 3)."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run (SPEC §7): the frozen resolution's identity and counts."""

    pk: int
    run_id: str  # `<campaign_id>/<run_key>`
    campaign_id: str
    run_key: str
    as_of: date
    dedupe: DedupeMode
    template: str
    created_at: datetime
    resolved_at: datetime
    finished_at: datetime | None
    candidates: int  # audit rows
    sends: int
    merged: int
    skips: int
    deliveries: int
    warnings: int
    coordinator: str | None  # the last lock holder that started a pass, for `status`
    pass_no: int


@dataclass(frozen=True, slots=True)
class PassInfo:
    """A new sending pass: its number, and what it put back into the queue.

    `reset`: deliveries found `sending` (in flight when a process died; unconfirmed, §7).
    `retried`: deliveries `deferred` by an earlier pass, tried again in this one.
    """

    pass_no: int
    reset: int
    retried: int


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this sender now owns for the pass: everything needed to render and send it.

    `unconfirmed` > 0 or `outcome_unknown` mean an earlier attempt may have reached the recipient:
    the message is sent again with the same Message-ID (SPEC §7).
    """

    delivery_id: int
    run_id: str
    delivery: Delivery
    message_id: str
    attempts: int  # SMTP attempts before this claim
    unconfirmed: int
    outcome_unknown: bool
    claimed_by: str
    pass_no: int
    retry_attempts: int = 0  # attempts of its current retry series (tenacity's attempt number)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The final outcome of one claimed delivery in this pass, as the server confirmed it.

    `attempts` counts the SMTP attempts of this pass (added to the total). `hard_bounces` are the
    addresses a 5.1.x reply refused: they join the ledger's suppression list (SPEC §7).
    `outcome_unknown`: the last attempt failed after the body was on the wire.

    A result whose `status` is `pending` with a `not_before` time is not final: the delivery goes
    back to the queue to wait for its next attempt (issue 8: retries never hold a connection);
    `retry_attempts` is then the attempt number its series has reached.
    """

    claim: ClaimedDelivery
    status: DeliveryStatus
    attempts: int
    smtp_code: int | None
    smtp_text: str | None
    sent_at: datetime | None = None
    possible_duplicate: bool = False
    outcome_unknown: bool = False
    hard_bounces: tuple[str, ...] = ()
    not_before: datetime | None = None
    retry_attempts: int = 0

    @property
    def waits(self) -> bool:
        """The delivery goes back to the queue until `not_before` instead of being final."""
        return self.not_before is not None

    def __post_init__(self) -> None:
        if self.waits and self.status is not DeliveryStatus.PENDING:
            raise ValueError("a result that waits for a retry must be pending")
        if not self.waits and self.status not in FINAL_STATUSES:
            raise ValueError(f"a result must be sent, deferred or failed, not {self.status}")
        if self.attempts < 0:
            raise ValueError("attempts cannot be negative")


@dataclass(frozen=True, slots=True)
class RunStats:
    """Progress of a run, counted from the ledger (never from in-memory counters)."""

    counts: Mapping[DeliveryStatus, int] = field(default_factory=dict)
    unconfirmed: int = 0  # re-sent after a crash left them in flight
    possible_duplicate: int = 0

    def __getitem__(self, status: DeliveryStatus) -> int:
        return self.counts.get(status, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def open(self) -> int:
        """Deliveries not yet `sent` or `failed`: a run with any is not done."""
        return sum(self[s] for s in OPEN_STATUSES)


@dataclass(frozen=True, slots=True)
class AuditExportRow:
    """One audit row of a run with its delivery's state; fields in SPEC §5 column order.

    The delivery fields are None for `skip` rows; `merged` rows carry their delivery's values.
    """

    run_id: str
    campaign_id: str
    decision: Decision
    reasons: tuple[Reason, ...]
    audience: Audience
    account_id: str
    account_name: str
    source: Source
    person_id: str
    name: str
    email: str
    delivery_email: str | None
    status: DeliveryStatus | None
    attempts: int | None
    last_smtp_code: int | None
    last_error: str | None
    message_id: str | None
    sent_at: datetime | None
