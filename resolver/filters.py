"""Campaign filters (SPEC §4 "Campaign filters"): who is outside a campaign altogether.

A filtered candidate is not an audit row, unlike a skipped one: the campaign never concerned
it. `explain` still shows it, with the `detail` sentence built here.
"""

from __future__ import annotations

from typing import TypeVar

from resolver.model import (
    Audience,
    CampaignPolicy,
    Candidate,
    CustomerAccount,
    Excluded,
    ExclusionFilter,
    Plan,
    Product,
)
from resolver.text import N_

__all__ = ["DETAIL_TEMPLATES", "audience_exclusion", "customer_exclusion", "exclusion"]

_PLAN = N_("plan {plan} is not in the campaign's plans ({wanted})")
_PRODUCTS = N_("no active contract for any of the campaign's products ({wanted})")
_AUDIENCE = N_("audience {audience} is not in the campaign's audiences ({wanted})")
DETAIL_TEMPLATES = (_PLAN, _PRODUCTS, _AUDIENCE)
"""The `detail` sentences, as templates: `explain` shows them in the operator's language."""

_E = TypeVar("_E", Audience, Plan, Product)


def _listed(values: frozenset[_E], enum: type[_E]) -> str:
    # Declaration order of the enum, so that the sentence is stable from run to run.
    return ", ".join(member for member in enum if member in values) or N_("none")


def customer_exclusion(
    account: CustomerAccount, policy: CampaignPolicy
) -> tuple[ExclusionFilter, str] | None:
    """Why a customer is outside the campaign's `plans`/`products` filters, or None."""
    customer = account.customer
    if policy.plans is not None and customer.plan not in policy.plans:
        return (
            ExclusionFilter.PLANS,
            _PLAN.format(plan=customer.plan, wanted=_listed(policy.plans, Plan)),
        )
    # §4: a customer matches `products` when it has an active contract for at least one.
    if policy.products is not None and not (account.active_products & policy.products):
        wanted = _listed(policy.products, Product)
        return (
            ExclusionFilter.PRODUCTS,
            _PRODUCTS.format(wanted=wanted),
        )
    return None


def audience_exclusion(audience: Audience, policy: CampaignPolicy) -> str | None:
    """Why an audience is outside the campaign's `audiences`, or None."""
    if audience in policy.audiences:
        return None
    wanted = _listed(policy.audiences, Audience)
    return _AUDIENCE.format(audience=audience, wanted=wanted)


def exclusion(
    c: Candidate, account: CustomerAccount | None, policy: CampaignPolicy
) -> Excluded | None:
    """The filter that removes the candidate from the campaign, or None when it is in it."""
    detail = audience_exclusion(c.audience, policy)
    if detail is not None:
        return Excluded(candidate=c, filter=ExclusionFilter.AUDIENCES, detail=detail)
    # §4: `plans` and `products` apply to customer candidates only.
    if c.customer is None or account is None:
        return None
    found = customer_exclusion(account, policy)
    if found is None:
        return None
    return Excluded(candidate=c, filter=found[0], detail=found[1])
