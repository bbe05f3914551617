"""Issue 10: the resolution's fast path (`resolver.fast`, rows from the driver's cursor, the
deliveries spilled to a temporary file) against the pure path (`Resolver.feed_customer` on
resolver values), on every database, in both dedupe modes: identical audit rows in the same
order, identical warnings, identical deliveries (so identical messages and Message-IDs) and
counts. The pure path is run twice: through the pipeline (same reads, values built by the
loader) and entirely in memory (`resolve_all` over the accounts the loader returns, with the
in-memory delivery store), so that neither the fast path nor the spilled store can drift.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobs.resolution.spill
import resolver.dedupe
from jobs.config.campaign import Campaign, load_campaign
from jobs.resolution.pipeline import Resolved, resolve_campaign, stream_resolution
from jobs.source.engine import make_engine, snapshot
from jobs.source.importer import import_dir
from jobs.source.loader import iter_customer_accounts, iter_partner_accounts, load_suppression_keys
from jobs.source.models import init_source_schema, source_tables
from resolver.model import Audience, AuditRow, CampaignPolicy, DedupeMode, Plan, Product
from resolver.resolve import audit_row, resolve_all
from tests.conftest import REPO

AS_OF = date(2026, 12, 1)

POLICIES = {
    "address": CampaignPolicy(),
    "address_per_account": CampaignPolicy(dedupe=DedupeMode.ADDRESS_PER_ACCOUNT),
    "filters": CampaignPolicy(plans=frozenset({Plan.PAID}), products=frozenset({Product.PAYROLL})),
    "partners only": CampaignPolicy(
        audiences=frozenset({Audience.PARTNER, Audience.IMPLEMENTATION_PARTNER}),
        dedupe=DedupeMode.ADDRESS_PER_ACCOUNT,
    ),
}


@dataclass
class Outcome:
    rows: list[AuditRow]
    warnings: list[Any]
    deliveries: list[Any]
    counts: dict[str, Any]


def _campaign(policy: CampaignPolicy) -> Campaign:
    shipped = load_campaign(REPO / "config" / "campaigns" / "maintenance-notice.toml")
    return replace(shipped, policy=policy)


def _through_pipeline(engine: sa.Engine, campaign: Campaign, *, pure: bool) -> Outcome:
    with Resolved() as resolved:
        rows = list(stream_resolution(engine, campaign, AS_OF, resolved, pure=pure, progress=False))
        counts = resolved.summary.as_json()
        counts.pop("seconds")
        return Outcome(rows, list(resolved.warnings), list(resolved.deliveries), counts)


def _counting(engine: sa.Engine, campaign: Campaign) -> Outcome:
    """Counts only (`resolve`, approvals): no rows, no deliveries, the same counts."""
    with resolve_campaign(
        engine, campaign, AS_OF, progress=False, keep_deliveries=False
    ) as resolved:
        counts = resolved.summary.as_json()
        counts.pop("seconds")
        return Outcome([], list(resolved.warnings), [], counts)


def _in_memory(engine: sa.Engine, campaign: Campaign) -> Outcome:
    with snapshot(engine) as conn:
        customers = list(iter_customer_accounts(conn))
        partners = list(iter_partner_accounts(conn))
        suppressed = load_suppression_keys(conn)
    resolution = resolve_all(customers, partners, campaign.policy, AS_OF, suppressed)
    return Outcome(
        [audit_row(row) for row in resolution.rows],
        list(resolution.warnings),
        list(resolution.deliveries),
        {},
    )


def _assert_identical(engine: sa.Engine, policy: CampaignPolicy) -> Outcome:
    campaign = _campaign(policy)
    fast = _through_pipeline(engine, campaign, pure=False)
    pure = _through_pipeline(engine, campaign, pure=True)
    memory = _in_memory(engine, campaign)
    counting = _counting(engine, campaign)
    assert fast.rows == pure.rows == memory.rows
    # Enum members, not just equal strings: the CSV writers read `.value`.
    assert [type(r.decision) for r in fast.rows] == [type(r.decision) for r in pure.rows]
    assert fast.warnings == pure.warnings == memory.warnings == counting.warnings
    assert fast.deliveries == pure.deliveries == memory.deliveries
    assert fast.counts == pure.counts == counting.counts
    return fast


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    init_source_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
def test_sample_set_fast_path_equals_pure_path(
    engine: sa.Engine, sample_data: Path, policy: CampaignPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two deliveries in memory at a time: nearly every merge reads its delivery back.
    monkeypatch.setattr(jobs.resolution.spill, "HOT_LIMIT", 2)
    import_dir(engine, sample_data)
    fast = _assert_identical(engine, policy)
    if policy == CampaignPolicy():
        decisions = {row.decision.value for row in fast.rows}
        assert decisions == {"send", "merged", "skip"}  # the sample exercises every branch
        # Accounts the fast path hands to the pure path; the generated sets add the others.
        codes = {w.code.value for w in fast.warnings}
        assert codes >= {"UNREACHABLE_CUSTOMER", "ADMIN_AFTER_CUTOFF"}


# --- generated data sets --------------------------------------------------------------------

_EMAILS = [
    "shared@example.jp",
    "Shared@Example.JP",
    "ｓｈａｒｅｄ＠ｅｘａｍｐｌｅ．ｊｐ",
    " shared@example.jp ",
    "Office@Kaikei.example.co.jp",
    "office@kaikei.example.co.jp",
    "postmaster@example.jp",
    "Postmaster@example.jp",
    "",
    "   ",
    "bad@@example.jp",
    "x@localhost",
    "suppressed@example.jp",
    "SUPPRESSED@example.jp",
    "例え@example.jp",
]
# Mostly clean names: an account with a name to sanitize goes to the pure path as a whole.
_NAMES = ["山田 太郎", "山田\u3000花子", "佐藤 一郎", "", "鈴木 次郎", "Evil\r\nBcc: x@example.jp"]
_DATES = ["", "2019-09-23", "2019-09-24", "2021-04-01"]


@st.composite
def data_sets(draw: st.DrawFn) -> dict[str, list[list[str]]]:
    """A small §3 data set whose values collide often: shared addresses in every spelling."""
    tables: dict[str, list[list[str]]] = {name: [] for name in _HEADERS}
    partners = [f"P{i:03d}" for i in range(draw(st.integers(1, 3)))]
    for pid in partners:
        tables["partners"].append(
            [
                pid,
                f"パートナー{pid}",
                draw(st.sampled_from(["reseller", "partner", "implementation"])),
                draw(st.sampled_from(["active", "active", "terminated"])),
                "100-0001",
                "東京都",
            ]
        )
        for k in range(draw(st.integers(0, 3))):
            role = draw(st.sampled_from(["contact", "certified_implementer"]))
            until = draw(
                st.sampled_from(
                    ["", str(AS_OF), str(AS_OF - timedelta(days=1)), str(AS_OF + timedelta(1))]
                )
            )
            tables["partner_contacts"].append(
                [
                    pid,
                    f"K{pid}{k}",
                    draw(st.sampled_from(_NAMES)),
                    draw(st.sampled_from(_EMAILS)),
                    role,
                    until,
                    draw(st.sampled_from(["active", "active", "inactive"])),
                ]
            )
    for i in range(draw(st.integers(1, 12))):
        corp = f"C{i:03d}"
        channel = draw(st.sampled_from(["direct", "direct", "reseller"]))
        tables["customers"].append(
            [
                corp,
                f"株式会社{i}",
                channel,
                partners[0] if channel == "reseller" else "",
                draw(st.sampled_from(["free", "paid"])),
                draw(st.sampled_from(["active", "suspended", "terminated"])),
                draw(st.sampled_from(_DATES)),
                draw(st.sampled_from(["0", "0", "1"])),
                "100-0001",
                f"東京都{i}",
                "会社情報名",
                "会社情報住所",
            ]
        )
        for role in draw(st.sets(st.sampled_from(["contract_manager", "billing"]))):
            tables["mypage_contacts"].append(
                [corp, role, draw(st.sampled_from(_NAMES)), draw(st.sampled_from(_EMAILS))]
            )
        user_ids = draw(
            st.sets(st.sampled_from(["admin", "Admin", "ADMIN", "u1", "u2", "U1"]), max_size=4)
        )
        for uid in sorted(user_ids):
            tables["users"].append(
                [
                    corp,
                    uid,
                    draw(st.sampled_from(_NAMES)),
                    draw(st.sampled_from(_EMAILS)),
                    draw(st.sampled_from(["0", "1"])),
                    draw(st.sampled_from(["normal", "normal", "group"])),
                    draw(st.sampled_from(["active", "active", "locked", "deleted"])),
                ]
            )
        for product in draw(st.sets(st.sampled_from(["sales", "accounting", "payroll"]))):
            status = draw(st.sampled_from(["active", "terminated"]))
            tables["contracts"].append([corp, product, status])
    tables["suppressions"].append(["Suppressed@Example.jp", "hard_bounce", ""])
    return tables


# The CSV headers of SPEC §3, in table column order (what `db import` expects).
_HEADERS = {table.name: [column.name for column in table.columns] for table in source_tables()}


def _write(folder: Path, tables: dict[str, list[list[str]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(_HEADERS[name])
            writer.writerows(rows)


def import_generated(
    engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory, tables: dict[str, list[list[str]]]
) -> None:
    """Write a generated data set as CSV files and import it, replacing the one before."""
    folder = tmp_path_factory.mktemp("generated")
    _write(folder, tables)
    import_dir(engine, folder)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tables=data_sets(), policy=st.sampled_from(list(POLICIES.values())))
def test_generated_sets_fast_path_equals_pure_path(
    engine: sa.Engine,
    tmp_path_factory: pytest.TempPathFactory,
    tables: dict[str, list[list[str]]],
    policy: CampaignPolicy,
) -> None:
    import_generated(engine, tmp_path_factory, tables)
    original = jobs.resolution.spill.HOT_LIMIT
    jobs.resolution.spill.HOT_LIMIT = 1
    try:
        _assert_identical(engine, policy)
    finally:
        jobs.resolution.spill.HOT_LIMIT = original


def test_colliding_key_hashes_still_make_separate_deliveries(
    engine: sa.Engine,
    sample_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every key hashes to 0: the index answers "maybe" for every address, and only the stores'
    # comparison of whole keys keeps different addresses apart.
    import_dir(engine, sample_data)
    campaign = _campaign(CampaignPolicy())
    expected = _in_memory(engine, campaign)
    monkeypatch.setattr(resolver.dedupe, "_HASH_BITS", 0)
    monkeypatch.setattr(jobs.resolution.spill, "_HASH_BITS", 0)
    monkeypatch.setattr(jobs.resolution.spill, "HOT_LIMIT", 3)
    for got in (_through_pipeline(engine, campaign, pure=False), _in_memory(engine, campaign)):
        assert got.rows == expected.rows
        assert got.deliveries == expected.deliveries
    # Counts only: the hashes alone merge every address into the first; the proof at the end
    # fails, and the resolution runs again with its deliveries kept, to the exact counts.
    with caplog.at_level(logging.WARNING, logger="jobs.resolution.pipeline"):
        counting = _counting(engine, campaign)
    assert "shared a hash" in caplog.text
    assert counting.counts == _through_pipeline(engine, campaign, pure=True).counts
    assert counting.counts["deliveries"] == len(expected.deliveries) > 1


def test_a_second_counting_attempt_still_sees_the_jobs_own_suppressions(
    engine: sa.Engine, sample_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ledger's suppressions may arrive as a one-pass iterable; the attempt that a failed
    # proof starts must suppress them too.
    import_dir(engine, sample_data)
    campaign = _campaign(CampaignPolicy())
    sent = {row.delivery_key for row in _through_pipeline(engine, campaign, pure=True).rows}
    bounced = sorted(key for key in sent if key)[:3]

    def counts(suppressed: Any) -> dict[str, Any]:
        with resolve_campaign(
            engine,
            campaign,
            AS_OF,
            extra_suppressed=suppressed,
            progress=False,
            keep_deliveries=False,
        ) as resolved:
            reasons: dict[str, Any] = resolved.summary.as_json()["reasons"]
            return reasons

    expected = counts(frozenset(bounced))
    assert expected["SUPPRESSED"] >= 3
    monkeypatch.setattr(resolver.dedupe, "_HASH_BITS", 0)  # the first attempt's proof fails
    assert counts(iter(bounced)) == expected
