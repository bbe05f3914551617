"""Issue 10: the counts-only resolution in worker processes on PostgreSQL
(`jobs.resolution.parallel`) gives the counts and warnings of one process, reads one snapshot,
and falls back to one process when a proof fails. Chunks of three customers, so that dedupe
crosses chunks everywhere (the sample shares addresses across customers on purpose).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobs.resolution.parallel
import jobs.resolution.pipeline
import resolver.dedupe
from jobs.config.campaign import Campaign, load_campaign
from jobs.resolution.pipeline import resolve_campaign
from jobs.source.engine import export_snapshot, joined_snapshot, make_engine, snapshot
from jobs.source.importer import import_dir
from jobs.source.models import init_source_schema
from resolver.model import CampaignPolicy
from tests.conftest import REPO
from tests.db.test_fast_path import POLICIES, _write, data_sets

pytestmark = pytest.mark.postgres

AS_OF = date(2026, 12, 1)


def _campaign(policy: CampaignPolicy) -> Campaign:
    shipped = load_campaign(REPO / "config" / "campaigns" / "maintenance-notice.toml")
    return replace(shipped, policy=policy)


def _counts(
    engine: sa.Engine, campaign: Campaign, *, keep: bool, in_parallel: bool = True
) -> tuple[dict[str, Any], list[Any]]:
    with resolve_campaign(
        engine, campaign, AS_OF, progress=False, keep_deliveries=keep, in_parallel=in_parallel
    ) as resolved:
        counts = resolved.summary.as_json()
        counts.pop("seconds")
        return counts, list(resolved.warnings)


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(pg_url)
    init_source_schema(engine)
    yield engine
    engine.dispose()


@dataclass
class Sample:
    campaign: Campaign
    counts: dict[str, Any]  # one process, deliveries kept
    warnings: list[Any]


@pytest.fixture
def sample(engine: sa.Engine, sample_data: Path) -> Sample:
    """The sample set imported, with what one process counts for the shipped campaign."""
    import_dir(engine, sample_data)
    campaign = _campaign(CampaignPolicy())
    return Sample(campaign, *_counts(engine, campaign, keep=True))


@pytest.fixture
def in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.resolution.parallel, "MIN_CUSTOMERS", 0)
    monkeypatch.setattr(jobs.resolution.parallel, "CHUNK_CUSTOMERS", 3)


def _assert_same_counts(engine: sa.Engine, policy: CampaignPolicy) -> dict[str, Any]:
    campaign = _campaign(policy)
    assert jobs.resolution.parallel.parallel_workers(engine, 1) >= 2  # the path under test
    parallel, parallel_warnings = _counts(engine, campaign, keep=False)
    one, one_warnings = _counts(engine, campaign, keep=True)
    assert parallel == one
    assert parallel_warnings == one_warnings  # in corp_id order, as one process finds them
    return parallel


@pytest.mark.usefixtures("in_chunks")
@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
def test_workers_count_the_sample_like_one_process(
    engine: sa.Engine, sample_data: Path, policy: CampaignPolicy
) -> None:
    import_dir(engine, sample_data)
    counts = _assert_same_counts(engine, policy)
    if policy == CampaignPolicy():
        assert counts["decisions"]["merged"] > 0


@pytest.mark.usefixtures("in_chunks")
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tables=data_sets(), policy=st.sampled_from(list(POLICIES.values())))
def test_workers_count_generated_sets_like_one_process(
    engine: sa.Engine,
    tmp_path_factory: pytest.TempPathFactory,
    tables: dict[str, list[list[str]]],
    policy: CampaignPolicy,
) -> None:
    folder = tmp_path_factory.mktemp("generated")
    _write(folder, tables)
    import_dir(engine, folder)
    _assert_same_counts(engine, policy)


@pytest.mark.usefixtures("in_chunks")
def test_a_failed_proof_across_chunks_counts_again_in_one_process(
    engine: sa.Engine,
    sample: Sample,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every key hashes to 0 in this process (the workers keep their own hashes): every send of
    # a later chunk looks like a merge, the proof fails, and one process counts again, exactly.
    monkeypatch.setattr(resolver.dedupe, "_HASH_BITS", 0)
    with caplog.at_level(logging.INFO, logger="jobs.resolution.pipeline"):
        counted, _ = _counts(engine, sample.campaign, keep=False)
    assert "processes" in caplog.text and "shared a hash" in caplog.text
    assert counted == sample.counts


@pytest.mark.usefixtures("in_chunks")
def test_workers_that_cannot_start_leave_the_count_to_one_process(
    engine: sa.Engine,
    sample: Sample,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A well-formed id of no snapshot: every real worker fails to join it and dies.
    monkeypatch.setattr(
        jobs.resolution.pipeline, "export_snapshot", lambda conn: "00000000-0000DEAD-1"
    )
    with caplog.at_level(logging.WARNING, logger="jobs.resolution.pipeline"):
        counted, warnings = _counts(engine, sample.campaign, keep=False)
    assert "counting in one process" in caplog.text
    assert (counted, warnings) == (sample.counts, sample.warnings)


@pytest.mark.usefixtures("in_chunks")
def test_parallel_count_off_counts_in_one_process(
    engine: sa.Engine, sample: Sample, caplog: pytest.LogCaptureFixture
) -> None:
    # Settings `database.parallel_count = false` reaches resolve_campaign as in_parallel=False.
    with caplog.at_level(logging.INFO, logger="jobs.resolution.pipeline"):
        counted, _ = _counts(engine, sample.campaign, keep=False, in_parallel=False)
    assert "processes" not in caplog.text
    assert counted == sample.counts


def test_a_joined_snapshot_sees_what_the_exporter_sees(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE marks (n integer)")
        conn.exec_driver_sql("INSERT INTO marks VALUES (1)")
    with snapshot(engine) as exporter:
        exporter.exec_driver_sql("SELECT 1")  # the snapshot is taken by the first statement
        exported = export_snapshot(exporter)
        with engine.begin() as writer:  # committed after the snapshot: invisible to it
            writer.exec_driver_sql("INSERT INTO marks VALUES (2)")
        with joined_snapshot(engine, exported) as joined:
            seen = joined.exec_driver_sql("SELECT count(*) FROM marks").scalar_one()
    assert seen == 1
    with pytest.raises(ValueError, match="snapshot id"), joined_snapshot(engine, "1'; --"):
        pass


def test_only_postgresql_with_enough_customers_and_cores_counts_in_parallel(
    engine: sa.Engine, sqlite_url: str
) -> None:
    parallel = jobs.resolution.parallel
    assert parallel.parallel_workers(engine, parallel.MIN_CUSTOMERS - 1) == 0
    assert parallel.parallel_workers(engine, parallel.MIN_CUSTOMERS) >= 2
    other = make_engine(sqlite_url)
    try:
        assert parallel.parallel_workers(other, 10 * parallel.MIN_CUSTOMERS) == 0
    finally:
        other.dispose()
