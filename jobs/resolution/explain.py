"""`explain` (SPEC §8): the decision trace for a person or an account, in plain words.

Support staff use it to answer "why did / didn't this person get it?". The answer must be the
one the run gives, so `explain` runs the whole resolution (dedupe depends on every account that
comes before) and keeps only what concerns the person or account asked about, including the people
who are not candidates at all (ordinary users) and those outside the campaign's filters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.errors import NotFound
from jobs.resolution.pipeline import resolve_campaign
from jobs.source.loader import find_accounts_by_email
from jobs.source.models import Customer as CustomerRow
from jobs.source.models import Partner as PartnerRow
from resolver.candidates import is_legacy_admin
from resolver.model import (
    REASON_SEPARATOR,
    AccountKind,
    Candidate,
    Decided,
    Decision,
    Delivery,
    Excluded,
    Reason,
    User,
)
from resolver.normalize import dedupe_key
from resolver.resolve import AccountOutcome
from resolver.rules import EXPLANATIONS

__all__ = ["Explanation", "PersonTrace", "explain", "render_text"]


@dataclass
class PersonTrace:
    """One person of an account and what the policy said about them."""

    account_kind: str
    account_id: str
    account_name: str
    person_id: str
    name: str
    email: str
    source: str  # candidate source code, or "" for a non-candidate
    audience: str
    decision: str  # send | merged | skip | outside_campaign | not_a_candidate
    reasons: list[str] = field(default_factory=list)
    because: list[str] = field(default_factory=list)  # one sentence per reason, in order
    delivery_email: str = ""
    merged_into: str = ""  # for merged rows: who the message goes to


@dataclass
class Explanation:
    campaign_id: str
    as_of: str
    query: dict[str, str]
    people: list[PersonTrace] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _merged_into(delivery: Delivery) -> str:
    first = delivery.accounts[0]
    return f"{delivery.name} <{delivery.email}> (the message for {first.name}, {first.id})"


def _trace(c: Candidate, decision: str, reasons: list[str], because: list[str]) -> PersonTrace:
    return PersonTrace(
        account_kind=c.account_kind.value,
        account_id=c.account_id,
        account_name=c.account_name,
        person_id=c.person_id,
        name=c.name,
        email=c.email,
        source=c.source.value,
        audience=c.audience.value,
        decision=decision,
        reasons=reasons,
        because=because,
    )


def _trace_row(row: Decided) -> PersonTrace:
    trace = _trace(
        row.candidate,
        row.decision.value,
        [r.value for r in row.reasons],
        [EXPLANATIONS[r] for r in row.reasons],
    )
    trace.delivery_email = row.delivery_email or ""
    return trace


def _trace_excluded(ex: Excluded) -> PersonTrace:
    because = [f"outside the campaign's {ex.filter.value} filter: {ex.detail}"]
    return _trace(ex.candidate, "outside_campaign", [], because)


def _non_candidate(outcome: AccountOutcome, user: User, account_name: str) -> PersonTrace:
    if is_legacy_admin(user):  # cannot happen: admin is always a candidate; kept honest
        words = "the built-in admin user"
    else:
        words = (
            "this user does not hold the System Administrator permission, so the policy does "
            "not consider them (only My Page contacts, System Administrators and the legacy "
            "`admin` user of a customer are candidates)"
        )
    return PersonTrace(
        account_kind=AccountKind.CUSTOMER.value,
        account_id=outcome.account_id,
        account_name=account_name,
        person_id=user.user_id,
        name=user.name,
        email=user.email,
        source="",
        audience="",
        decision="not_a_candidate",
        because=[words],
    )


def _exists(engine: sa.Engine, column: Any, value: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(column).where(column == value)).first() is not None


def explain(
    engine: sa.Engine,
    campaign: Campaign,
    as_of: date,
    *,
    email: str | None = None,
    corp_id: str | None = None,
    partner_id: str | None = None,
    extra_suppressed: frozenset[str] = frozenset(),
    suppression_origin: Callable[[str], Sequence[str]] | None = None,
    already_sent: frozenset[str] = frozenset(),
) -> Explanation:
    """Trace one person (by e-mail) or one account; NotFound (exit 2) when nothing matches.

    `suppression_origin(key)`: where the suppression of a dedupe key came from, in sentences
    (§10: the source data, a hard bounce in run X, an operator with a note).
    """
    query = {
        k: v for k, v in (("email", email), ("corp_id", corp_id), ("partner_id", partner_id)) if v
    }
    target_key: str | None = None
    if email is not None:
        target_key = dedupe_key(email)
        with engine.connect() as conn:
            corp_ids, partner_ids = find_accounts_by_email(conn, email)
        if not corp_ids and not partner_ids:
            raise NotFound(f"no My Page contact, user or partner contact has the address {email!r}")
    elif corp_id is not None:
        if not _exists(engine, CustomerRow.corp_id, corp_id):
            raise NotFound(f"no customer with corp_id {corp_id!r}")
        corp_ids, partner_ids = (corp_id,), ()
    elif partner_id is not None:
        if not _exists(engine, PartnerRow.partner_id, partner_id):
            raise NotFound(f"no partner with partner_id {partner_id!r}")
        corp_ids, partner_ids = (), (partner_id,)
    else:
        raise NotFound("nothing to explain: give --email, --corp-id or --partner-id")

    wanted = set(corp_ids) | set(partner_ids)
    result = Explanation(campaign.id, as_of.isoformat(), query)

    def matches(raw_email: str) -> bool:
        return target_key is None or dedupe_key(raw_email) == target_key

    traced: list[tuple[PersonTrace, str | None]] = []
    explained: set[str] = set()  # suppressed keys whose origin a trace already gives

    def on_outcome(outcome: AccountOutcome) -> None:
        if outcome.account_id not in wanted:
            return
        for row in outcome.rows:
            if matches(row.candidate.email):
                trace = _trace_row(row)
                key = row.candidate.normalized.key
                if Reason.SUPPRESSED in row.reasons and suppression_origin and key:
                    trace.because.extend(suppression_origin(key))
                    explained.add(key)
                traced.append((trace, row.delivery_key))
        for ex in outcome.excluded:
            if matches(ex.candidate.email):
                traced.append((_trace_excluded(ex), None))
        account_name = next(
            (r.candidate.account_name for r in outcome.rows),
            next((e.candidate.account_name for e in outcome.excluded), ""),
        )
        for user in outcome.non_candidates:
            if matches(user.email):
                traced.append((_non_candidate(outcome, user, account_name), None))
        for w in outcome.warnings:
            if target_key is None or matches(w.email):
                result.warnings.append(
                    {
                        "code": w.code.value,
                        "account_id": w.account_id,
                        "person_id": w.person_id,
                        "email": w.email,
                        "detail": w.detail,
                    }
                )

    keys: set[str] = set()
    with resolve_campaign(
        engine,
        campaign,
        as_of,
        extra_suppressed=extra_suppressed,
        already_sent=already_sent,
        on_outcome=on_outcome,  # every account through the pure path: outcomes as values
        progress=False,
    ) as resolved:
        keys = {key for _, key in traced if key is not None}
        by_key = {d.key: d for d in resolved.deliveries if d.key in keys}
    for trace, key in traced:
        if trace.decision == Decision.MERGED.value and key in by_key:
            trace.merged_into = _merged_into(by_key[key])
        result.people.append(trace)
    if not result.people:
        result.notes.append(
            "this account has no My Page contact, System Administrator, admin user or partner "
            "contact: nobody in it can receive the campaign"
        )
    if target_key is not None and target_key in extra_suppressed and target_key not in explained:
        origins = suppression_origin(target_key) if suppression_origin else ()
        result.notes.append(
            "the address is on the job's own suppression list"
            + (": " + "; ".join(origins) if origins else "")
        )
    return result


_DECISION_WORDS = {
    "send": "RECEIVES the message",
    "merged": "receives it through another row (same address)",
    "skip": "does NOT receive it",
    "outside_campaign": "is outside this campaign",
    "not_a_candidate": "is not a recipient",
}


def render_text(result: Explanation) -> str:
    """The trace as short paragraphs for a person."""
    lines = [f"campaign {result.campaign_id} as of {result.as_of}"]
    for p in result.people:
        who = p.name or "(no name)"
        ident = f"{p.account_id}" + (f"/{p.person_id}" if p.person_id else "")
        role = p.source or "user"
        lines.append("")
        lines.append(f"{who} <{p.email}> — {role} of {p.account_name} ({ident})")
        codes = f" [{REASON_SEPARATOR.join(p.reasons)}]" if p.reasons else ""
        lines.append(f"  {_DECISION_WORDS[p.decision]}{codes}")
        for sentence in p.because:
            lines.append(f"  - {sentence}")
        if p.delivery_email:
            lines.append(f"  delivery address: {p.delivery_email}")
        if p.merged_into:
            lines.append(f"  merged into: {p.merged_into}")
    if result.warnings:
        lines.append("")
        lines.append("warnings:")
        for w in result.warnings:
            lines.append(f"  {w['code']}: {w['detail']}")
    for note in result.notes:
        lines.append("")
        lines.append(f"note: {note}")
    return "\n".join(lines)
