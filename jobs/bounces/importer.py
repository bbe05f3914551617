"""`bounces import` (SPEC §10): each notification matched to its delivery, then recorded.

Matching, most trustworthy first:
1. the VERP token of the address the notification was delivered to (`return_path` with
   `{token}`): it names the delivery and carries a MAC only the job can make. A token that does
   not verify is **refused** (listed as forged), never matched another way: a forged bounce must
   not suppress anyone;
2. the original Message-ID in the returned message or headers, looked up among the frozen
   Message-IDs of the ledger.
What matches nothing, and what is not a bounce (auto-replies, spam), is counted and listed:
a mailbox always holds some, so they are never an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from jobs.bounces.parse import Notice, parse_notice
from jobs.i18n import _, tr
from jobs.ledger import check_ledger
from jobs.ledger.bounces import (
    BounceTally,
    DeliveryRef,
    MatchedBounce,
    deliveries_by_id,
    deliveries_by_message_id,
    record_bounces,
)
from jobs.messages.verp import ReturnPath, parse_token, token_verifies

__all__ = ["ImportReport", "Listed", "import_bounces"]


@dataclass(frozen=True, slots=True)
class Listed:
    """A message of the mailbox that was not recorded, and why."""

    where: str  # Maildir file name or `message N` of the mbox
    subject: str
    sender: str
    why: str


@dataclass
class ImportReport:
    """What `bounces import` read, matched and changed."""

    messages: int = 0
    bounces: int = 0  # messages that report at least one failure
    by_message_id: int = 0
    by_verp: int = 0
    tally: BounceTally = field(default_factory=BounceTally)
    not_bounces: list[Listed] = field(default_factory=list)
    unmatched: list[Listed] = field(default_factory=list)
    forged: list[Listed] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Read:
    where: str
    notice: Notice
    token: str | None  # a VERP token in an address it was delivered to


def _listed(read: _Read, why: str) -> Listed:
    return Listed(read.where, read.notice.subject, read.notice.sender, why)


def import_bounces(
    ledger: sa.Engine,
    messages: Iterable[tuple[str, bytes]],
    return_path: ReturnPath,
    *,
    now: datetime | None = None,
) -> ImportReport:
    """Parse, match and record every message of a bounce mailbox; safe to repeat."""
    check_ledger(ledger)
    report = ImportReport()
    reads: list[_Read] = []
    for where, data in messages:
        report.messages += 1
        notice = parse_notice(data)
        token = next(
            (t for a in notice.envelope_to if (t := return_path.token_in(a)) is not None), None
        )
        read = _Read(where, notice, token)
        if not notice.is_bounce:
            report.not_bounces.append(_listed(read, _("not a bounce (no failed recipient)")))
            continue
        report.bounces += 1
        reads.append(read)

    tokens = {r.token: parse_token(r.token) for r in reads if r.token is not None}
    with ledger.connect() as conn:
        by_id = deliveries_by_id(conn, {p[0] for p in tokens.values() if p is not None})
        by_mid = deliveries_by_message_id(
            conn, {mid for r in reads for mid in r.notice.original_message_ids}
        )

    matched: list[MatchedBounce] = []
    for read in reads:
        delivery: DeliveryRef | None = None
        how = ""
        if read.token is not None:
            parsed = tokens[read.token]
            found = by_id.get(parsed[0]) if parsed is not None else None
            key = return_path.key
            if (
                found is None
                or key is None
                or not token_verifies(key, read.token, found.delivery_id, found.message_id)
            ):
                forged = tr("VERP token {token!r} does not verify", token=read.token)
                report.forged.append(_listed(read, forged))
                continue
            delivery, how = found, "verp"
            report.by_verp += 1
        else:
            ids = read.notice.original_message_ids
            delivery = next((by_mid[m] for m in ids if m in by_mid), None)
            if delivery is None:
                why = (
                    tr("no delivery has Message-ID {message_id}", message_id=ids[0])
                    if ids
                    else _("no original Message-ID and no VERP token")
                )
                recipients = ", ".join(f.recipient for f in read.notice.failures)
                why = tr("{why} (failed: {recipients})", why=why, recipients=recipients)
                report.unmatched.append(_listed(read, why))
                continue
            how = "message_id"
            report.by_message_id += 1
        failure = read.notice.worst_for(delivery.email)
        matched.append(
            MatchedBounce(
                delivery=delivery,
                fingerprint=read.notice.fingerprint,
                kind=failure.kind,
                dsn_status=failure.status,
                diagnostic=failure.diagnostic,
                matched_by=how,
            )
        )
    report.tally = record_bounces(ledger, matched, now=now)
    return report
