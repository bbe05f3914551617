"""`test-send` (SPEC §10): the real messages of a few recipients, to one test address only.

Real resolution, real rendering and MIME, the real relay and retry path: what the operator sees
in their inbox is what the customer would get, except the `[TEST]` subject prefix, the
`X-SWMail-Original-To` header naming the real recipient and a Message-ID of its own (so that
nothing about the test copy can ever be matched to a real delivery). The ledger is only read
(the job's suppressions): a test send is no run, and nothing about it is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.config.settings import SmtpSettings
from jobs.errors import InputError, NotFound
from jobs.i18n import _, tr
from jobs.messages.compose import Composer
from jobs.resolution.pipeline import resolve_campaign
from jobs.smtp.envelope import Envelope, FinalStatus
from jobs.smtp.pool import SmtpPool
from jobs.smtp.retry import send_with_retry
from resolver.model import Delivery
from resolver.normalize import dedupe_key

__all__ = ["CopiesReport", "SentCopy", "pick_deliveries", "send_test_copies"]


@dataclass(frozen=True, slots=True)
class SentCopy:
    """One test copy and what the relay said."""

    original_to: str
    message_id: str
    status: FinalStatus
    reply: str

    @property
    def accepted(self) -> bool:
        return self.status is FinalStatus.SENT


@dataclass
class CopiesReport:
    to: str
    sent: list[SentCopy] = field(default_factory=list)

    @property
    def all_accepted(self) -> bool:
        return all(s.accepted for s in self.sent)


def pick_deliveries(
    deliveries: Iterable[Delivery], *, email: str | None, sample: int
) -> list[Delivery]:
    """The deliveries of `email`, or `sample` spread over audiences and include reasons.

    The spread takes one delivery of each (audience, reasons) group in turn, groups in order
    of first appearance, so that N messages show N different footers before any repeats.
    One pass over the deliveries, keeping at most `sample` of each group.
    """
    if email is not None:
        key = dedupe_key(email)
        found = [d for d in deliveries if key is not None and dedupe_key(d.email) == key]
        if not found:
            raise NotFound(
                tr("{email} receives nothing in this campaign (`explain` says why)", email=email)
            )
        return found
    if sample < 1:
        raise InputError(_("--sample must be at least 1"))
    groups: dict[tuple[object, ...], list[Delivery]] = {}
    for d in deliveries:
        group = groups.setdefault((d.audience, d.reasons), [])
        if len(group) < sample:
            group.append(d)
    picked: list[Delivery] = []
    depth = 0
    while len(picked) < sample and any(len(g) > depth for g in groups.values()):
        picked += [g[depth] for g in groups.values() if len(g) > depth][: sample - len(picked)]
        depth += 1
    return picked


async def _send_all(
    composer: Composer, smtp: SmtpSettings, chosen: Sequence[Delivery]
) -> CopiesReport:
    report = CopiesReport(composer.redirect_to)
    return_path = composer.return_path()  # the From address: test copies carry no VERP token
    async with SmtpPool.from_settings(smtp) as pool:
        for delivery in chosen:
            composed = composer.compose(delivery)
            envelope = Envelope(
                sender=return_path.for_delivery(0, composed.message_id),
                recipients=(composer.recipient(delivery),),
                data=composed.data,
                message_id=composed.message_id,
                key=delivery.key,
            )
            final = await send_with_retry(
                pool,
                envelope,
                max_attempts=smtp.max_attempts,
                backoff_initial=smtp.backoff_initial_seconds,
                backoff_max=smtp.backoff_max_seconds,
            )
            reply = " ".join(str(p) for p in (final.code, final.text) if p)
            report.sent.append(SentCopy(delivery.email, composed.message_id, final.status, reply))
    return report


def send_test_copies(
    engine: sa.Engine,
    campaign: Campaign,
    composer: Composer,
    smtp: SmtpSettings,
    *,
    as_of: date,
    email: str | None,
    sample: int,
    extra_suppressed: frozenset[str] = frozenset(),
) -> CopiesReport:
    """Resolve, pick, and send test copies to `composer.redirect_to` only."""
    if not composer.redirect_to:
        raise InputError(_("test-send needs a test address (--to)"))
    composer.check()
    with resolve_campaign(
        engine, campaign, as_of, extra_suppressed=extra_suppressed, progress=False
    ) as resolved:
        chosen = pick_deliveries(resolved.deliveries, email=email, sample=sample)
    return asyncio.run(_send_all(composer, smtp, chosen))
