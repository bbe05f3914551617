"""The ledger's suppression list and bounce records on each real database (SPEC §7, §10)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from jobs.errors import InputError, NotFound
from jobs.ledger import RunRecord
from jobs.ledger.bounces import (
    MatchedBounce,
    deliveries_by_id,
    deliveries_by_message_id,
    record_bounces,
)
from jobs.ledger.models import DeliveryRow
from jobs.ledger.suppressions import (
    SuppressionOrigin,
    add_suppression,
    list_suppressions,
    remove_suppression,
)
from jobs.ledger.values import BounceKind, DeliveryStatus
from resolver.model import SuppressionReason

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def test_add_normalizes_keeps_the_first_entry_and_remove_lifts_it(ledger: sa.Engine) -> None:
    entry, added = add_suppression(
        ledger, " Taro@EXAMPLE.jp ", SuppressionReason.COMPLAINT, "電話 #1", now=NOW
    )
    assert added
    assert (entry.email, entry.origin, entry.note, entry.created_at) == (
        "taro@example.jp",
        SuppressionOrigin.OPERATOR,
        "電話 #1",
        NOW,
    )
    again, added = add_suppression(ledger, "taro@example.jp", SuppressionReason.MANUAL, "2nd")
    assert not added and again == entry
    # no source tables in this database: the source list is simply empty
    assert list_suppressions(ledger, ledger) == [entry]
    assert remove_suppression(ledger, ledger, "TARO@example.jp") == entry
    assert list_suppressions(ledger, ledger) == []
    with pytest.raises(NotFound):
        remove_suppression(ledger, ledger, "taro@example.jp")


def test_only_operators_reasons_are_accepted(ledger: sa.Engine) -> None:
    with pytest.raises(InputError):
        add_suppression(ledger, "a@example.jp", SuppressionReason.HARD_BOUNCE, "")


def _bounce(
    ledger: sa.Engine, run: RunRecord, seq: int, kind: BounceKind, fingerprint: str
) -> MatchedBounce:
    with ledger.connect() as conn:
        delivery_id = conn.execute(
            sa.select(DeliveryRow.id).where(DeliveryRow.run_pk == run.pk, DeliveryRow.seq == seq)
        ).scalar_one()
        ref = deliveries_by_id(conn, {delivery_id})[delivery_id]
        assert deliveries_by_message_id(conn, {ref.message_id}) == {ref.message_id: ref}
    hard = kind is BounceKind.HARD
    return MatchedBounce(
        delivery=ref,
        fingerprint=fingerprint,
        kind=kind,
        dsn_status="5.1.1" if hard else "4.2.2",
        diagnostic="550 5.1.1 user unknown" if hard else "452 4.2.2 mailbox full",
        matched_by="message_id",
    )


def test_bounces_are_recorded_once_and_only_hard_ones_change_the_delivery(
    ledger: sa.Engine, run: RunRecord
) -> None:
    with ledger.begin() as conn:  # the relay accepted every delivery
        conn.execute(sa.update(DeliveryRow).values(status=DeliveryStatus.SENT))
    hard = _bounce(ledger, run, 1, BounceKind.HARD, "<dsn-1@relay>")
    soft = _bounce(ledger, run, 2, BounceKind.SOFT, "<dsn-2@relay>")
    tally = record_bounces(ledger, [hard, soft, hard], now=NOW)
    assert (tally.hard, tally.soft, tally.bounced, tally.suppressed, tally.repeated) == (
        1,
        1,
        1,
        1,
        1,
    )
    again = record_bounces(ledger, [hard, soft], now=NOW)
    assert (again.hard, again.soft, again.bounced, again.suppressed, again.repeated) == (
        0,
        0,
        0,
        0,
        2,
    )
    with ledger.connect() as conn:
        refs = deliveries_by_id(conn, {hard.delivery.delivery_id, soft.delivery.delivery_id})
    assert refs[hard.delivery.delivery_id].status is DeliveryStatus.BOUNCED
    assert refs[soft.delivery.delivery_id].status is DeliveryStatus.SENT
    [entry] = list_suppressions(ledger, ledger)
    assert (entry.email, entry.origin, entry.run_id) == (
        hard.delivery.email,
        SuppressionOrigin.BOUNCE,
        run.run_id,
    )
    assert "in run maintenance-notice/2026-12-01 on 2026-12-02: 550 5.1.1" in entry.provenance()
