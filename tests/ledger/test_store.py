"""A run's resolution is frozen once, whole, and read back exactly (SPEC §5, §7)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from jobs.errors import InputError
from jobs.ledger import (
    DeliveryStatus,
    RunRecord,
    create_run,
    get_run,
    iter_audit,
    iter_warnings,
    list_runs,
    make_run_id,
    stats,
)
from jobs.ledger.models import DeliveryRow
from jobs.ledger.queue import claim
from jobs.source.bulk import CHUNK_ROWS
from jobs.source.engine import make_engine
from resolver.model import (
    AuditRow,
    Decided,
    Decision,
    DedupeMode,
    Delivery,
    Reason,
    Source,
    Warning,
    WarningCode,
)
from resolver.resolve import audit_row
from tests.ledger import factory
from tests.ledger.conftest import freeze


def test_create_run_freezes_the_resolution(ledger: sa.Engine) -> None:
    moment = datetime(2026, 12, 1, 3, 0, 0, 123456, tzinfo=timezone(timedelta(hours=9)))
    run = create_run(
        ledger,
        campaign_id="maintenance-notice",
        run_key="2026-12-01",
        as_of=factory.AS_OF,
        dedupe=DedupeMode.ADDRESS_PER_ACCOUNT,
        template="maintenance",
        audit_rows=factory.audit_rows(12),
        deliveries=factory.deliveries(12),
        warnings=factory.warnings(12),
        message_id_for=factory.message_id_for,
        now=moment,
    )
    expected = factory.counts(12)
    assert run.run_id == "maintenance-notice/2026-12-01"
    assert (run.campaign_id, run.run_key, run.as_of) == (
        "maintenance-notice",
        "2026-12-01",
        factory.AS_OF,
    )
    assert run.dedupe is DedupeMode.ADDRESS_PER_ACCOUNT
    assert (run.candidates, run.sends, run.merged, run.skips, run.deliveries, run.warnings) == (
        expected.audit,
        expected.sends,
        expected.merged,
        expected.skips,
        12,
        expected.warnings,
    )
    # stored as UTC with microseconds on every database, read back aware
    assert run.created_at == moment and run.created_at.tzinfo is UTC
    assert (run.pass_no, run.finished_at, run.coordinator) == (0, None, None)
    with ledger.connect() as conn:
        assert get_run(conn, run.run_id) == run
        assert stats(conn, run).counts == {DeliveryStatus.PENDING: 12}


def test_audit_rows_come_back_in_order_with_their_values(ledger: sa.Engine, run: RunRecord) -> None:
    with ledger.connect() as conn:
        rows = list(iter_audit(conn, run))
    frozen = list(factory.decided_rows(12))
    assert len(rows) == len(frozen) == run.candidates
    for got, want in zip(rows, frozen, strict=True):
        c = want.candidate
        assert (got.run_id, got.campaign_id) == (run.run_id, run.campaign_id)
        assert (got.decision, got.reasons, got.audience, got.source) == (
            want.decision,
            want.reasons,
            c.audience,
            c.source,
        )
        assert (got.account_id, got.account_name, got.person_id, got.name, got.email) == (
            c.account_id,
            c.account_name,
            c.person_id,
            c.name,
            c.email,
        )
        assert got.delivery_email == want.delivery_email
        if want.decision is Decision.SKIP:
            assert (got.status, got.message_id, got.attempts) == (None, None, None)
        else:
            assert got.status is DeliveryStatus.PENDING
            assert got.message_id == factory.message_id_for(str(want.delivery_key))


def test_warnings_come_back_in_order(ledger: sa.Engine, run: RunRecord) -> None:
    with ledger.connect() as conn:
        assert list(iter_warnings(conn, run)) == list(factory.warnings(12))


def test_claimed_delivery_is_the_frozen_delivery(ledger: sa.Engine, run: RunRecord) -> None:
    claimed = claim(ledger, run, 1, "w1", 100)
    assert [c.delivery for c in claimed] == list(factory.deliveries(12))
    assert [c.message_id for c in claimed] == [
        factory.message_id_for(d.key) for d in factory.deliveries(12)
    ]


def _exploding() -> Iterator[AuditRow]:
    raise AssertionError("an existing run must not be resolved again")
    yield  # pragma: no cover


def test_an_existing_run_is_returned_unchanged_and_never_re_resolved(
    ledger: sa.Engine, run: RunRecord
) -> None:
    again = create_run(
        ledger,
        campaign_id=run.campaign_id,
        run_key=run.run_key,
        as_of=factory.AS_OF + timedelta(days=1),
        dedupe=DedupeMode.ADDRESS_PER_ACCOUNT,
        template="other",
        audit_rows=_exploding(),
        deliveries=iter(()),
        warnings=iter(()),
        message_id_for=factory.message_id_for,
    )
    assert again == run
    with ledger.connect() as conn:
        assert len(list(iter_audit(conn, run))) == run.candidates
        assert list_runs(conn) == [run]


def test_a_failed_freeze_leaves_no_run(ledger: sa.Engine) -> None:
    def broken() -> Iterator[Delivery]:
        yield from factory.deliveries(3)
        raise RuntimeError("the source database went away")

    with pytest.raises(RuntimeError):
        create_run(
            ledger,
            campaign_id="maintenance-notice",
            run_key="2026-12-01",
            as_of=factory.AS_OF,
            dedupe=DedupeMode.ADDRESS,
            template="maintenance",
            audit_rows=factory.audit_rows(3),
            deliveries=broken(),
            warnings=iter(()),
            message_id_for=factory.message_id_for,
        )
    with ledger.connect() as conn:
        assert get_run(conn, "maintenance-notice/2026-12-01") is None
        assert conn.execute(sa.select(sa.func.count()).select_from(DeliveryRow)).scalar() == 0


def test_freezing_streams_more_rows_than_one_chunk(ledger: sa.Engine) -> None:
    n = CHUNK_ROWS + 500
    run = freeze(ledger, n)
    with ledger.connect() as conn:
        assert stats(conn, run).total == n
        assert sum(1 for _ in iter_audit(conn, run)) == factory.counts(n).audit


def test_runs_are_listed_oldest_first_and_kept_apart(ledger: sa.Engine) -> None:
    first = freeze(ledger, 2, run_key="2026-12-01")
    second = freeze(ledger, 3, run_key="2026-12-02")
    with ledger.connect() as conn:
        assert [r.run_id for r in list_runs(conn)] == [first.run_id, second.run_id]
        assert stats(conn, second).total == 3
        assert sum(1 for _ in iter_audit(conn, first)) == factory.counts(2).audit


def test_ids_compare_exactly(ledger: sa.Engine) -> None:
    """MariaDB's default collation would make these one run; the ledger keeps them apart."""
    lower = freeze(ledger, 1, run_key="run-a")
    upper = freeze(ledger, 1, run_key="RUN-A")
    assert lower.pk != upper.pk


@pytest.mark.parametrize(
    ("campaign_id", "run_key"),
    [("", "k"), ("a/b", "k"), ("c", ""), ("c", "x" * 129), ("c", "2026/12"), ("c", "a b")],
)
def test_bad_run_ids_are_input_errors(campaign_id: str, run_key: str) -> None:
    # one rule for both parts (jobs.config.runs), the one `--run-key` and campaign ids obey
    with pytest.raises(InputError):
        make_run_id(campaign_id, run_key)


def test_unknown_run_is_none(ledger: sa.Engine) -> None:
    with ledger.connect() as conn:
        assert get_run(conn, "nothing/here") is None


def test_reason_codes_round_trip_every_code(ledger: sa.Engine) -> None:
    skip_all = tuple(r for r in Reason)[:10]
    row = Decided(
        candidate=factory.candidate(1, "", Source.MYPAGE_BILLING),
        decision=Decision.SKIP,
        reasons=skip_all,
        skip_reasons=skip_all,
    )
    run = create_run(
        ledger,
        campaign_id="c",
        run_key="k",
        as_of=factory.AS_OF,
        dedupe=DedupeMode.ADDRESS,
        template="t",
        audit_rows=[audit_row(row)],
        deliveries=[],
        warnings=[Warning(WarningCode.HEADER_SANITIZED, "C1", "u1", "", "制御文字")],
        message_id_for=factory.message_id_for,
    )
    with ledger.connect() as conn:
        (got,) = iter_audit(conn, run)
    assert got.reasons == skip_all


def test_racing_freezes_of_one_run_agree_on_the_first(db_url: str, ledger: sa.Engine) -> None:
    """Two processes freezing the same run at once: the second returns the first's run."""
    inside, proceed = threading.Event(), threading.Event()
    results: dict[str, RunRecord] = {}

    def slow_deliveries() -> Iterator[Delivery]:
        yield from factory.deliveries(3)
        inside.set()  # the first freeze is mid-transaction, its run row inserted
        proceed.wait(30)

    def first() -> None:
        results["first"] = create_run(
            ledger,
            campaign_id="maintenance-notice",
            run_key="2026-12-01",
            as_of=factory.AS_OF,
            dedupe=DedupeMode.ADDRESS,
            template="maintenance",
            audit_rows=factory.audit_rows(3),
            deliveries=slow_deliveries(),
            warnings=iter(()),
            message_id_for=factory.message_id_for,
        )

    def second() -> None:
        other = make_engine(db_url)
        try:
            results["second"] = freeze(other, 5)
        finally:
            other.dispose()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert inside.wait(30)
    threads[1].start()
    threads[1].join(timeout=0.3)  # let the second reach its INSERT and wait behind the first
    proceed.set()
    for thread in threads:
        thread.join(timeout=60)
    assert results["second"] == results["first"]
    assert results["first"].deliveries == 3
    with ledger.connect() as conn:
        assert stats(conn, results["first"]).total == 3


def test_audit_rows_are_consumed_before_deliveries_so_a_resolution_can_stream_in(
    ledger: sa.Engine,
) -> None:
    # `run` passes the audit rows of a resolution still in progress and its deliveries lazily:
    # they are only complete once the last audit row has been decided.
    rows_done = False

    def rows() -> Iterator[AuditRow]:
        nonlocal rows_done
        yield from factory.audit_rows(30)
        rows_done = True

    def deliveries_after_rows() -> Iterator[Delivery]:
        assert rows_done, "deliveries were read before the audit rows were exhausted"
        yield from factory.deliveries(30)

    run = create_run(
        ledger,
        campaign_id="maintenance-notice",
        run_key="streamed",
        as_of=factory.AS_OF,
        dedupe=DedupeMode.ADDRESS,
        template="maintenance",
        audit_rows=rows(),
        deliveries=deliveries_after_rows(),
        warnings=factory.warnings(3),
        message_id_for=factory.message_id_for,
    )
    assert run.deliveries == 30
    assert run.candidates == factory.counts(30).audit
