"""Passes, claims and confirmed results (SPEC §7: crash-safe, each delivery sent once)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from jobs.ledger import (
    ClaimedDelivery,
    DeliveryResult,
    DeliveryStatus,
    RunRecord,
    begin_pass,
    claim,
    finish_run,
    get_run,
    iter_audit,
    load_suppression_keys,
    record,
    release,
    stats,
)
from jobs.ledger.models import SuppressionRow
from resolver.model import Decision, SuppressionReason
from tests.ledger import factory

SENT_AT = datetime(2026, 12, 1, 18, 0, 0, 500000, tzinfo=UTC)


def sent(c: ClaimedDelivery, attempts: int = 1) -> DeliveryResult:
    return DeliveryResult(c, DeliveryStatus.SENT, attempts, 250, "2.0.0 Ok: queued", SENT_AT)


def deferred(c: ClaimedDelivery) -> DeliveryResult:
    return DeliveryResult(c, DeliveryStatus.DEFERRED, 5, 451, "4.3.0 try again later")


def failed(c: ClaimedDelivery, *bounced: str) -> DeliveryResult:
    return DeliveryResult(
        c, DeliveryStatus.FAILED, 1, 550, "5.1.1 user unknown", hard_bounces=bounced
    )


def counts(engine: sa.Engine, run: RunRecord) -> dict[DeliveryStatus, int]:
    with engine.connect() as conn:
        return dict(stats(conn, run).counts)


def test_claims_take_pending_deliveries_in_seq_order_once(
    ledger: sa.Engine, run: RunRecord
) -> None:
    info = begin_pass(ledger, run)
    first = claim(ledger, run, info.pass_no, "w1", 5)
    second = claim(ledger, run, info.pass_no, "w2", 5)
    third = claim(ledger, run, info.pass_no, "w1", 5)
    assert [c.delivery.seq for c in first] == [1, 2, 3, 4, 5]
    assert [c.delivery.seq for c in second] == [6, 7, 8, 9, 10]
    assert [c.delivery.seq for c in third] == [11, 12]
    assert claim(ledger, run, info.pass_no, "w1", 5) == []
    assert {c.claimed_by for c in second} == {"w2"}
    assert counts(ledger, run) == {DeliveryStatus.SENDING: 12}


def test_claim_record_cycle(ledger: sa.Engine, run: RunRecord) -> None:
    info = begin_pass(ledger, run)
    claimed = claim(ledger, run, info.pass_no, "w1", 12)
    results = [sent(c, attempts=2) for c in claimed[:9]]
    results += [deferred(claimed[9]), failed(claimed[10]), failed(claimed[11])]
    assert record(ledger, results) == 12
    assert counts(ledger, run) == {
        DeliveryStatus.SENT: 9,
        DeliveryStatus.DEFERRED: 1,
        DeliveryStatus.FAILED: 2,
    }
    with ledger.connect() as conn:
        audit = {(row.email, row.decision): row for row in iter_audit(conn, run)}
    first = audit[(factory.address(1), Decision.SEND)]
    assert (first.status, first.attempts, first.last_smtp_code, first.sent_at) == (
        DeliveryStatus.SENT,
        2,
        250,
        SENT_AT,
    )
    tenth = audit[(factory.address(10), Decision.SEND)]
    assert (tenth.status, tenth.last_smtp_code, tenth.last_error, tenth.sent_at) == (
        DeliveryStatus.DEFERRED,
        451,
        "4.3.0 try again later",
        None,
    )
    assert not finish_run(ledger, run)  # a deferred delivery is still open


def test_merged_rows_carry_their_deliverys_status_and_skips_stay_empty(
    ledger: sa.Engine, run: RunRecord
) -> None:
    info = begin_pass(ledger, run)
    claimed = claim(ledger, run, info.pass_no, "w1", 12)
    record(ledger, [sent(c) if c.delivery.seq != 3 else failed(c) for c in claimed])
    with ledger.connect() as conn:
        rows = list(iter_audit(conn, run))
    merged = [r for r in rows if r.decision is Decision.MERGED]
    assert merged and all(r.delivery_email == r.email.lower() for r in merged)
    by_email = {r.delivery_email: r.status for r in merged}
    assert by_email[factory.address(3)] is DeliveryStatus.FAILED
    assert by_email[factory.address(6)] is DeliveryStatus.SENT
    assert all(r.message_id == factory.message_id_for(str(r.delivery_email)) for r in merged)
    skips = [r for r in rows if r.decision is Decision.SKIP]
    assert skips and all(
        (r.status, r.attempts, r.last_smtp_code, r.last_error, r.message_id, r.sent_at)
        == (None, None, None, None, None, None)
        for r in skips
    )


def test_a_claimed_delivery_shows_as_pending_in_the_audit(
    ledger: sa.Engine, run: RunRecord
) -> None:
    claim(ledger, run, begin_pass(ledger, run).pass_no, "w1", 1)
    with ledger.connect() as conn:
        first = next(iter_audit(conn, run))
    assert first.status is DeliveryStatus.PENDING  # §5 has no "sending"


def test_begin_pass_resets_unconfirmed_deliveries(ledger: sa.Engine, run: RunRecord) -> None:
    first_pass = begin_pass(ledger, run, coordinator="host a pid 1 since t")
    assert (first_pass.pass_no, first_pass.reset, first_pass.retried) == (1, 0, 0)
    claimed = claim(ledger, run, first_pass.pass_no, "dead-worker", 4)
    record(ledger, [sent(claimed[0])])
    # the process dies here: three deliveries stay `sending`
    second_pass = begin_pass(ledger, run, coordinator="host b pid 2 since t")
    assert (second_pass.pass_no, second_pass.reset) == (2, 3)
    with ledger.connect() as conn:
        current = get_run(conn, run.run_id)
        assert current is not None
        assert (current.pass_no, current.coordinator) == (2, "host b pid 2 since t")
        assert stats(conn, run).unconfirmed == 3
    again = claim(ledger, run, second_pass.pass_no, "w2", 3)
    # the same deliveries, with their original Message-IDs, flagged as possibly sent
    assert [c.delivery.seq for c in again] == [2, 3, 4]
    assert [c.message_id for c in again] == [c.message_id for c in claimed[1:]]
    assert all(c.unconfirmed == 1 for c in again)
    # the dead worker's late confirmation no longer applies
    assert record(ledger, [sent(claimed[1])]) == 0
    assert counts(ledger, run)[DeliveryStatus.SENT] == 1


def test_deferred_waits_for_the_next_pass(ledger: sa.Engine, run: RunRecord) -> None:
    first_pass = begin_pass(ledger, run)
    claimed = claim(ledger, run, first_pass.pass_no, "w1", 12)
    record(ledger, [deferred(claimed[0]), *(sent(c) for c in claimed[1:])])
    assert claim(ledger, run, first_pass.pass_no, "w1", 12) == []  # not within the pass
    second_pass = begin_pass(ledger, run)
    assert (second_pass.reset, second_pass.retried) == (0, 1)
    (retry,) = claim(ledger, run, second_pass.pass_no, "w1", 12)
    assert (retry.delivery.seq, retry.attempts, retry.unconfirmed) == (1, 5, 0)
    record(ledger, [sent(retry)])
    with ledger.connect() as conn:
        first = next(iter_audit(conn, run))
    assert (first.status, first.attempts) == (DeliveryStatus.SENT, 6)
    assert finish_run(ledger, run)


def test_record_only_updates_the_claimers_sending_rows(ledger: sa.Engine, run: RunRecord) -> None:
    info = begin_pass(ledger, run)
    mine = claim(ledger, run, info.pass_no, "w1", 2)
    theirs = claim(ledger, run, info.pass_no, "w2", 1)
    impostor = replace(theirs[0], claimed_by="w1")
    assert record(ledger, [sent(mine[0]), sent(impostor)]) == 1
    assert record(ledger, [sent(mine[0])]) == 0  # already final: a replay changes nothing
    assert counts(ledger, run) == {
        DeliveryStatus.SENT: 1,
        DeliveryStatus.SENDING: 2,
        DeliveryStatus.PENDING: 9,
    }


def test_release_gives_claims_back_to_the_pass(ledger: sa.Engine, run: RunRecord) -> None:
    info = begin_pass(ledger, run)
    claimed = claim(ledger, run, info.pass_no, "w1", 3)
    assert release(ledger, claimed[1:]) == 2
    again = claim(ledger, run, info.pass_no, "w2", 3)
    assert [c.delivery.seq for c in again] == [2, 3, 4]
    assert all(c.unconfirmed == 0 for c in again)


def test_hard_bounces_are_suppressed_once(ledger: sa.Engine, run: RunRecord) -> None:
    with ledger.begin() as conn:
        conn.execute(
            sa.insert(SuppressionRow).values(
                email="manual@example.jp",
                reason=SuppressionReason.MANUAL,
                created_at=SENT_AT,
            )
        )
    info = begin_pass(ledger, run)
    a, b, c = claim(ledger, run, info.pass_no, "w1", 3)
    # the same address twice in one batch, in two spellings, plus one already suppressed
    record(
        ledger, [failed(a, "Gone@Example.jp"), failed(b, "gone@example.jp", "MANUAL@example.jp")]
    )
    record(ledger, [failed(c, "gone@example.jp")])  # and again in a later batch
    with ledger.connect() as conn:
        assert load_suppression_keys(conn) == {"gone@example.jp", "manual@example.jp"}
        rows = {row.email: row for row in conn.execute(sa.select(SuppressionRow.__table__))}
    assert rows["manual@example.jp"].reason is SuppressionReason.MANUAL  # the first entry stays
    gone = rows["gone@example.jp"]
    assert (gone.reason, gone.run_id, gone.smtp_code, gone.smtp_text) == (
        SuppressionReason.HARD_BOUNCE,
        run.run_id,
        550,
        "5.1.1 user unknown",
    )
    assert counts(ledger, run)[DeliveryStatus.FAILED] == 3


def test_possible_duplicates_and_unknown_outcomes_are_kept(
    ledger: sa.Engine, run: RunRecord
) -> None:
    info = begin_pass(ledger, run)
    a, b = claim(ledger, run, info.pass_no, "w1", 2)
    record(
        ledger,
        [
            DeliveryResult(a, DeliveryStatus.SENT, 2, 250, "ok", SENT_AT, possible_duplicate=True),
            DeliveryResult(b, DeliveryStatus.DEFERRED, 1, None, "timeout", outcome_unknown=True),
        ],
    )
    with ledger.connect() as conn:
        assert stats(conn, run).possible_duplicate == 1
    (retry,) = claim(ledger, run, begin_pass(ledger, run).pass_no, "w1", 12)[:1]
    assert (retry.delivery.seq, retry.outcome_unknown) == (2, True)


def test_finish_run_stamps_a_done_run(ledger: sa.Engine, run: RunRecord) -> None:
    info = begin_pass(ledger, run)
    record(ledger, [sent(c) for c in claim(ledger, run, info.pass_no, "w1", 12)])
    assert finish_run(ledger, run, now=SENT_AT)
    with ledger.connect() as conn:
        done = get_run(conn, run.run_id)
    assert done is not None and done.finished_at == SENT_AT


def test_a_waiting_delivery_is_claimable_only_from_its_not_before_time(
    ledger: sa.Engine, run: RunRecord
) -> None:
    """Issue 8: a delivery that must wait goes back to the queue; a new pass keeps its wait."""
    info = begin_pass(ledger, run)
    first, *others = claim(ledger, run, info.pass_no, "w1", 3, now=SENT_AT)
    due = SENT_AT + timedelta(seconds=60)
    waits = DeliveryResult(
        first, DeliveryStatus.PENDING, 1, 451, "4.7.1 greylisted", not_before=due, retry_attempts=1
    )
    assert record(ledger, [waits]) == 1
    release(ledger, others)

    early = claim(ledger, run, info.pass_no, "w2", 12, now=due - timedelta(seconds=1))
    assert first.delivery_id not in {c.delivery_id for c in early}
    assert len(early) == 11
    release(ledger, early)
    # a resume (a new pass) keeps the wait and the attempt number of the series
    resumed = begin_pass(ledger, run)
    assert claim(ledger, run, resumed.pass_no, "w2", 1, now=due, retries_only=True) == [
        replace(first, claimed_by="w2", pass_no=resumed.pass_no, attempts=1, retry_attempts=1)
    ]


def test_a_waiting_result_must_be_pending_with_a_time(run: RunRecord, ledger: sa.Engine) -> None:
    (c,) = claim(ledger, run, begin_pass(ledger, run).pass_no, "w1", 1)
    with pytest.raises(ValueError, match="must be pending"):
        DeliveryResult(c, DeliveryStatus.SENT, 1, 250, "ok", not_before=SENT_AT)
    with pytest.raises(ValueError, match="sent, deferred or failed"):
        DeliveryResult(c, DeliveryStatus.PENDING, 1, 451, "later")
