"""Resolver values for ledger tests, built by hand so that these tests do not depend on the policy.

`resolution(n)` gives n deliveries; every third delivery also has a merged row, and every fourth
position adds a skipped candidate, so that audit rows, deliveries and warnings all differ in count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from resolver.model import (
    AccountKind,
    AccountRef,
    Audience,
    AuditRow,
    Candidate,
    Channel,
    ContractStatus,
    Customer,
    Decided,
    Decision,
    Delivery,
    Normalized,
    Plan,
    Reason,
    Source,
    Warning,
    WarningCode,
)
from resolver.resolve import audit_row

AS_OF = date(2026, 12, 1)


def message_id_for(key: str) -> str:
    return f"<{key.replace('@', '.')}@mailer.test>"


def customer(i: int) -> Customer:
    return Customer(
        corp_id=f"C{i:06d}",
        company_name=f"株式会社テスト{i}",
        channel=Channel.DIRECT,
        reseller_partner_id=None,
        plan=Plan.PAID,
        contract_status=ContractStatus.ACTIVE,
        applied_on=date(2020, 1, 1),
        is_oem=False,
        postal_code="100-0001",
        address="東京都千代田区千代田1-1",
    )


def candidate(i: int, email: str, source: Source, person_id: str = "") -> Candidate:
    key = email.strip().lower() or None
    return Candidate(
        audience=Audience.CUSTOMER,
        source=source,
        account_id=f"C{i:06d}",
        account_name=f"株式会社テスト{i}",
        person_id=person_id,
        name=f"山田 太郎{i}",
        email=email,
        normalized=Normalized(original=email, address=key, key=key, missing=key is None),
        customer=customer(i),
    )


def address(i: int) -> str:
    return f"user{i}@example.jp"


def delivery(i: int) -> Delivery:
    c = customer(i)
    return Delivery(
        key=address(i),
        email=address(i),
        name=f"山田 太郎{i}",
        audience=Audience.CUSTOMER,
        reasons=(Reason.MYPAGE_CONTACT, Reason.SYSTEM_ADMIN),
        accounts=(
            AccountRef(
                kind=AccountKind.CUSTOMER,
                id=c.corp_id,
                name=c.company_name,
                roles=(Source.MYPAGE_CONTRACT_MANAGER, Source.SYSTEM_ADMIN),
                postal_code=c.postal_code,
                address=c.address,
            ),
        ),
        seq=i,
    )


def audit_rows(n: int) -> Iterator[AuditRow]:
    return (audit_row(d) for d in decided_rows(n))


def decided_rows(n: int) -> Iterator[Decided]:
    for i in range(1, n + 1):
        email = address(i)
        yield Decided(
            candidate=candidate(i, email, Source.MYPAGE_CONTRACT_MANAGER),
            decision=Decision.SEND,
            reasons=(Reason.MYPAGE_CONTACT,),
            delivery_key=email,
            delivery_email=email,
        )
        if i % 3 == 0:
            yield Decided(
                candidate=candidate(i, email.upper(), Source.SYSTEM_ADMIN, f"u{i}"),
                decision=Decision.MERGED,
                reasons=(Reason.SYSTEM_ADMIN, Reason.DUPLICATE_ADDRESS),
                delivery_key=email,
                delivery_email=email,
            )
        if i % 4 == 0:
            yield Decided(
                candidate=candidate(i, "", Source.MYPAGE_BILLING),
                decision=Decision.SKIP,
                reasons=(Reason.MISSING_EMAIL,),
                skip_reasons=(Reason.MISSING_EMAIL,),
            )


def deliveries(n: int) -> Iterator[Delivery]:
    return (delivery(i) for i in range(1, n + 1))


def warnings(n: int) -> Iterator[Warning]:
    for i in range(1, n + 1):
        if i % 5 == 0:
            yield Warning(
                code=WarningCode.EMAIL_NORMALIZED,
                account_id=f"C{i:06d}",
                person_id="",
                email=f"ｕｓｅｒ{i}@example.jp",
                detail="全角文字を半角に変換しました",
            )


@dataclass(frozen=True)
class Counts:
    audit: int
    sends: int
    merged: int
    skips: int
    warnings: int


def counts(n: int) -> Counts:
    merged, skips = n // 3, n // 4
    return Counts(n + merged + skips, n, merged, skips, n // 5)
