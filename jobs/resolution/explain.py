"""`explain` (SPEC §8): the decision trace for a person or an account, in plain words.

Support staff use it to answer "why did / didn't this person get it?". The answer must be the
one the run gives, so `explain` runs the whole resolution (dedupe depends on every account that
comes before) and keeps only what concerns the person or account asked about, including the people
who are not candidates at all (ordinary users) and those outside the campaign's filters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.errors import NotFound
from jobs.i18n import _, current_language, fmt_date, fmt_person, localize, tr
from jobs.resolution.pipeline import resolve_campaign
from jobs.source.loader import find_accounts_by_email
from jobs.source.models import Customer as CustomerRow
from jobs.source.models import Partner as PartnerRow
from resolver.candidates import is_legacy_admin
from resolver.filters import DETAIL_TEMPLATES as FILTER_DETAILS
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
from resolver.text import N_
from resolver.warnings import DETAIL_TEMPLATES as WARNING_DETAILS

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


# Sentences kept in English in the trace (the JSON is the same in every language, issue 11);
# `render_text` shows them in the operator's language.
_MERGED_INTO = N_("{person} (the message for {account}, {account_id})")
_OUTSIDE = N_("outside the campaign's {filter} filter: {detail}")
_NOT_A_CANDIDATE = N_(
    "this user does not hold the System Administrator permission, so the policy does "
    "not consider them (only My Page contacts, System Administrators and the legacy "
    "`admin` user of a customer are candidates)"
)
_BUILT_IN_ADMIN = N_("the built-in admin user")
_NOBODY = N_(
    "this account has no My Page contact, System Administrator, admin user or partner "
    "contact: nobody in it can receive the campaign"
)
_JOB_SUPPRESSED = N_("the address is on the job's own suppression list")
_JOB_SUPPRESSED_BY = N_("the address is on the job's own suppression list: {origins}")
SENTENCE_TEMPLATES = (
    _MERGED_INTO,
    _OUTSIDE,
    _JOB_SUPPRESSED_BY,
    *FILTER_DETAILS,
    *WARNING_DETAILS,
)
"""Every template a trace sentence is built from (for `localize`)."""


def _merged_into(delivery: Delivery) -> str:
    first = delivery.accounts[0]
    return _MERGED_INTO.format(
        person=f"{delivery.name} <{delivery.email}>", account=first.name, account_id=first.id
    )


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
    because = [_OUTSIDE.format(filter=ex.filter.value, detail=ex.detail)]
    return _trace(ex.candidate, "outside_campaign", [], because)


def _non_candidate(outcome: AccountOutcome, user: User, account_name: str) -> PersonTrace:
    # the first cannot happen (admin is always a candidate); kept honest
    words = _BUILT_IN_ADMIN if is_legacy_admin(user) else _NOT_A_CANDIDATE
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
            raise NotFound(
                tr(
                    "no My Page contact, user or partner contact has the address {email!r}",
                    email=email,
                )
            )
    elif corp_id is not None:
        if not _exists(engine, CustomerRow.corp_id, corp_id):
            raise NotFound(tr("no customer with corp_id {corp_id!r}", corp_id=corp_id))
        corp_ids, partner_ids = (corp_id,), ()
    elif partner_id is not None:
        if not _exists(engine, PartnerRow.partner_id, partner_id):
            raise NotFound(tr("no partner with partner_id {partner_id!r}", partner_id=partner_id))
        corp_ids, partner_ids = (), (partner_id,)
    else:
        raise NotFound(_("nothing to explain: give --email, --corp-id or --partner-id"))

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
        result.notes.append(_NOBODY)
    if target_key is not None and target_key in extra_suppressed and target_key not in explained:
        origins = suppression_origin(target_key) if suppression_origin else ()
        if origins:
            result.notes.append(_JOB_SUPPRESSED_BY.format(origins="; ".join(origins)))
        else:
            result.notes.append(_JOB_SUPPRESSED)
    return result


_DECISION_WORDS = {
    "send": N_("RECEIVES the message"),
    "merged": N_("receives it through another row (same address)"),
    "skip": N_("does NOT receive it"),
    "outside_campaign": N_("is outside this campaign"),
    "not_a_candidate": N_("is not a recipient"),
}
_ROLE_WORDS = {
    "mypage_contract_manager": N_("My Page contract manager"),
    "mypage_billing": N_("My Page billing contact"),
    "legacy_admin": N_("built-in admin user"),
    "system_admin": N_("System Administrator"),
    "partner_contact": N_("partner contact"),
    "certified_implementer": N_("certified implementer"),
    "": N_("user"),
}


def _role(source: str) -> str:
    """The candidate's source: the code in English (as in the audit), words with it in ja."""
    code = source or "user"
    if current_language() == "en":
        return code
    return f"{_(_ROLE_WORDS.get(source, code))}（{code}）"


def render_text(
    result: Explanation,
    templates: Sequence[str] = (),
    phrases: Mapping[str, str] | None = None,
) -> str:
    """The trace as short paragraphs for a person, in the operator's language.

    `templates`/`phrases`: sentences that later stages add to a trace (where a suppression came
    from), so that they are translated too; this stage cannot import them itself.
    """
    every = (*SENTENCE_TEMPLATES, *templates)

    def _sentence(text: str) -> str:
        return localize(text, every, phrases)

    def _merged_text(merged_into: str) -> str:
        """`merged into` in the operator's words; in ja the person's name takes 様."""
        found = re.match(r"^(?P<name>.*) <(?P<email>[^<>]*)> \(", merged_into)
        text = _sentence(merged_into)
        if found is None:
            return text
        plain = f"{found['name']} <{found['email']}>"
        return text.replace(plain, fmt_person(found["name"], found["email"]), 1)

    lines = [
        tr(
            "campaign {campaign} as of {day}",
            campaign=result.campaign_id,
            day=fmt_date(date.fromisoformat(result.as_of)),
        )
    ]
    for p in result.people:
        who = fmt_person(p.name or _("(no name)"), p.email)
        ident = f"{p.account_id}" + (f"/{p.person_id}" if p.person_id else "")
        lines.append("")
        lines.append(
            tr(
                "{who} — {role} of {account} ({ident})",
                who=who,
                role=_role(p.source),
                account=p.account_name,
                ident=ident,
            )
        )
        codes = f" [{REASON_SEPARATOR.join(p.reasons)}]" if p.reasons else ""
        lines.append(f"  {_(_DECISION_WORDS[p.decision])}{codes}")
        for sentence in p.because:
            lines.append(f"  - {_sentence(sentence)}")
        if p.delivery_email:
            lines.append("  " + tr("delivery address: {email}", email=p.delivery_email))
        if p.merged_into:
            lines.append("  " + tr("merged into: {person}", person=_merged_text(p.merged_into)))
    if result.warnings:
        lines.append("")
        lines.append(_("warnings:"))
        for w in result.warnings:
            lines.append(f"  {w['code']}: {_sentence(w['detail'])}")
    for note in result.notes:
        lines.append("")
        lines.append(tr("note: {note}", note=_sentence(note)))
    return "\n".join(lines)
