"""Deliveries and accounts for message tests, built from the shared resolver values."""

from __future__ import annotations

from datetime import date
from typing import Any

from jobs.messages.render import build_context
from resolver.model import AccountKind, AccountRef, Audience, Delivery, Reason, Source

AS_OF = date(2026, 12, 1)
CAMPAIGN = "maintenance-notice"
RUN_KEY = "2026-12-01"


def customer_account(
    corp_id: str = "C070000001",
    name: str = "株式会社東西青空",
    roles: tuple[Source, ...] = (Source.MYPAGE_CONTRACT_MANAGER,),
) -> AccountRef:
    return AccountRef(
        kind=AccountKind.CUSTOMER,
        id=corp_id,
        name=name,
        roles=roles,
        postal_code="664-7955",
        address="東京都千代田区2-8-19",
    )


def partner_account(
    partner_id: str = "P0700004",
    name: str = "合同会社大和システム",
    roles: tuple[Source, ...] = (Source.PARTNER_CONTACT,),
) -> AccountRef:
    return AccountRef(
        kind=AccountKind.PARTNER,
        id=partner_id,
        name=name,
        roles=roles,
        postal_code="662-5552",
        address="大阪府大阪市北区1-1-1",
    )


def delivery(
    *accounts: AccountRef,
    reasons: tuple[Reason, ...] = (Reason.MYPAGE_CONTACT,),
    audience: Audience = Audience.CUSTOMER,
    name: str = "斎藤 誠",
    email: str = "makoto.saito@example.co.jp",
) -> Delivery:
    return Delivery(
        key=email.lower(),
        email=email,
        name=name,
        audience=audience,
        reasons=reasons,
        accounts=accounts or (customer_account(),),
        seq=1,
    )


def context(d: Delivery) -> dict[str, Any]:
    return build_context(d, CAMPAIGN, RUN_KEY, AS_OF)
