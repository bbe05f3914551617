"""The skip rules of SPEC §4, one predicate per reason code, in the order of the `reasons` cell.

Find a rule by its code: `Reason.CONTRACT_ENDED` is decided by `contract_ended`. The order of
`SKIP_RULES` is public (auditors read the `reasons` column), so it changes only with the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from resolver.dedupe import group_key
from resolver.model import (
    AccountType,
    Candidate,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    DedupeMode,
    PartnerStatus,
    Reason,
    Source,
    UserStatus,
)
from resolver.text import N_

__all__ = [
    "EXPLANATIONS",
    "INCLUDE_CODE",
    "SKIP_RULES",
    "Rule",
    "RuleContext",
    "already_sent",
    "certification_expired",
    "contact_not_active",
    "contract_ended",
    "group_account",
    "invalid_email",
    "missing_email",
    "partner_not_active",
    "reseller_channel",
    "skip_reasons",
    "suppressed",
    "user_not_active",
]


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What the rules need besides the candidate: the as-of date, suppressions, earlier sends.

    `already_sent` holds the delivery keys that earlier runs of a non-recurring campaign sent
    (the ledger's answer, passed in as a plain value); empty for recurring campaigns and resends.
    """

    as_of: date
    suppressed: Container[str]  # dedupe keys (resolver.normalize.dedupe_key)
    already_sent: Container[str] = frozenset()  # delivery keys (resolver.dedupe.group_key)
    dedupe: DedupeMode = DedupeMode.ADDRESS  # how delivery keys are spelled


Rule = Callable[[Candidate, RuleContext], bool]


def reseller_channel(c: Candidate, ctx: RuleContext) -> bool:
    """The customer's channel is `reseller`."""
    return c.customer is not None and c.customer.channel is Channel.RESELLER


def contract_ended(c: Candidate, ctx: RuleContext) -> bool:
    """The customer's contract_status is `terminated` (`suspended` still receives)."""
    # §4: suspended still receives
    return c.customer is not None and c.customer.contract_status is ContractStatus.TERMINATED


def group_account(c: Candidate, ctx: RuleContext) -> bool:
    """The user's account_type is `group`."""
    # §2: a group account cannot use My Page, even with the System Administrator permission.
    return c.user is not None and c.user.account_type is AccountType.GROUP


def user_not_active(c: Candidate, ctx: RuleContext) -> bool:
    """The user's status is not `active`."""
    return c.user is not None and c.user.status is not UserStatus.ACTIVE


def partner_not_active(c: Candidate, ctx: RuleContext) -> bool:
    """The partner's status is not `active`."""
    return c.partner is not None and c.partner.status is not PartnerStatus.ACTIVE


def contact_not_active(c: Candidate, ctx: RuleContext) -> bool:
    """The partner contact's status is not `active`."""
    return c.contact is not None and c.contact.status is not ContactStatus.ACTIVE


def certification_expired(c: Candidate, ctx: RuleContext) -> bool:
    """A certified implementer's certified_until is empty or before the as-of date."""
    # §4: the day itself is valid; the column means nothing for role `contact`.
    if c.contact is None or c.contact.role is not ContactRole.CERTIFIED_IMPLEMENTER:
        return False
    until = c.contact.certified_until
    return until is None or until < ctx.as_of


def missing_email(c: Candidate, ctx: RuleContext) -> bool:
    """The e-mail is empty after trimming."""
    return c.normalized.missing


def invalid_email(c: Candidate, ctx: RuleContext) -> bool:
    """The e-mail is not a valid address after normalization."""
    # A missing address is MISSING_EMAIL only, not also invalid.
    return not c.normalized.missing and c.normalized.address is None


def suppressed(c: Candidate, ctx: RuleContext) -> bool:
    """The address's dedupe key equals that of an address on the suppression list."""
    return c.normalized.key is not None and c.normalized.key in ctx.suppressed


def already_sent(c: Candidate, ctx: RuleContext) -> bool:
    """An earlier run of this (non-recurring) campaign already sent this delivery key."""
    # §4: the caller passes nothing for recurring campaigns and for `run --resend`
    return c.normalized.key is not None and group_key(c, ctx.dedupe) in ctx.already_sent


SKIP_RULES: tuple[tuple[Reason, Rule], ...] = (
    (Reason.RESELLER_CHANNEL, reseller_channel),
    (Reason.CONTRACT_ENDED, contract_ended),
    (Reason.GROUP_ACCOUNT, group_account),
    (Reason.USER_NOT_ACTIVE, user_not_active),
    (Reason.PARTNER_NOT_ACTIVE, partner_not_active),
    (Reason.CONTACT_NOT_ACTIVE, contact_not_active),
    (Reason.CERTIFICATION_EXPIRED, certification_expired),
    (Reason.MISSING_EMAIL, missing_email),
    (Reason.INVALID_EMAIL, invalid_email),
    (Reason.SUPPRESSED, suppressed),
    (Reason.ALREADY_SENT, already_sent),
)
"""§4's skip table, in the order the `reasons` cell lists the codes."""


def skip_reasons(c: Candidate, ctx: RuleContext) -> tuple[Reason, ...]:
    """Every skip code that holds for the candidate, in §4 order (empty: included)."""
    return tuple(code for code, rule in SKIP_RULES if rule(c, ctx))


INCLUDE_CODE: Mapping[Source, Reason] = MappingProxyType(
    {
        Source.MYPAGE_CONTRACT_MANAGER: Reason.MYPAGE_CONTACT,
        Source.MYPAGE_BILLING: Reason.MYPAGE_CONTACT,
        Source.LEGACY_ADMIN: Reason.LEGACY_ADMIN,
        Source.SYSTEM_ADMIN: Reason.SYSTEM_ADMIN,
        Source.PARTNER_CONTACT: Reason.PARTNER_CONTACT,
        Source.CERTIFIED_IMPLEMENTER: Reason.CERTIFIED_IMPLEMENTER,
    }
)
"""The include code of an included candidate, by its source (§4)."""


EXPLANATIONS: Mapping[Reason, str] = MappingProxyType(
    {
        Reason.RESELLER_CHANNEL: N_(
            "the customer contracts through a reseller; resellers' customers are never mailed"
            " directly"
        ),
        Reason.CONTRACT_ENDED: N_(
            "the customer's contract is terminated (a suspended contract still receives)"
        ),
        Reason.GROUP_ACCOUNT: N_(
            "the user ID is a group account, which cannot use My Page, even with the System"
            " Administrator permission"
        ),
        Reason.USER_NOT_ACTIVE: N_("the user ID is locked or deleted"),
        Reason.PARTNER_NOT_ACTIVE: N_("the partner's agreement is terminated"),
        Reason.CONTACT_NOT_ACTIVE: N_(
            "the partner contact is registered as inactive by the partner office"
        ),
        Reason.CERTIFICATION_EXPIRED: N_(
            "the implementation-support certification has no end date or ended before the"
            " as-of date (the last day itself is still valid)"
        ),
        Reason.MISSING_EMAIL: N_("no e-mail address is registered"),
        Reason.INVALID_EMAIL: N_("the registered e-mail address is not a valid address"),
        Reason.SUPPRESSED: N_(
            "the address is on the suppression list (bounce, complaint or manual stop)"
        ),
        Reason.ALREADY_SENT: N_(
            "an earlier run of this one-off campaign already sent this message to the address"
            " (`run --resend` sends it again on purpose)"
        ),
        Reason.MYPAGE_CONTACT: N_(
            "the person is registered in My Page (company basic settings) as contract manager"
            " or billing contact"
        ),
        Reason.SYSTEM_ADMIN: N_("the user ID holds the System Administrator permission"),
        Reason.LEGACY_ADMIN: N_(
            "the user ID is the built-in `admin`, which has My Page access like a System"
            " Administrator"
        ),
        Reason.PARTNER_CONTACT: N_("the person is a registered contact of a SmileWorks partner"),
        Reason.CERTIFIED_IMPLEMENTER: N_(
            "the person is a certified implementation-support partner with a valid certification"
        ),
        Reason.DUPLICATE_ADDRESS: N_(
            "another recipient has the same address, so this person is covered by that"
            " single message"
        ),
    }
)
"""One sentence per code for `explain`, written for support staff (translated at the edge)."""
