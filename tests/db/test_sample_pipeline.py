"""The sample data set through the real pipeline (import → streaming loader → resolver) on every
database, in both dedupe modes: each candidate's decision, reasons and delivery group must equal
the expected files of tests/data/sample.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from jobs.config.campaign import load_campaign
from jobs.resolution.pipeline import resolve_campaign
from jobs.source.engine import make_engine
from jobs.source.importer import import_dir
from jobs.source.models import init_source_schema
from resolver.model import AuditRow, DedupeMode
from tests.conftest import REPO

AS_OF = date(2026, 12, 1)


def _expected(sample_data: Path, mode: DedupeMode) -> dict[str, tuple[str, str, str]]:
    with (sample_data / f"expected_{mode.value}.csv").open(encoding="utf-8") as f:
        return {r["key"]: (r["decision"], r["reasons"], r["group"]) for r in csv.DictReader(f)}


def _group(row: AuditRow, mode: DedupeMode) -> str:
    if row.delivery_email is None:
        return ""
    group = row.delivery_email.lower()
    if mode is DedupeMode.ADDRESS_PER_ACCOUNT:
        group += f"|{row.account_id}"
    return group


@pytest.mark.parametrize("mode", list(DedupeMode))
def test_sample_decisions_through_the_database(
    db_url: str, sample_data: Path, mode: DedupeMode
) -> None:
    engine = make_engine(db_url)
    try:
        init_source_schema(engine)
        import_dir(engine, sample_data)
        campaign = load_campaign(REPO / "config" / "campaigns" / "maintenance-notice.toml")
        campaign = replace(campaign, policy=replace(campaign.policy, dedupe=mode))
        rows: list[AuditRow] = []
        resolved = resolve_campaign(engine, campaign, AS_OF, on_row=rows.append, progress=False)
        deliveries = list(resolved.deliveries)
        resolved.close()
    finally:
        engine.dispose()

    got = {
        f"{r.source.value}|{r.account_id}|{r.person_id}": (
            r.decision.value,
            ";".join(x.value for x in r.reasons),
            _group(r, mode),
        )
        for r in rows
    }
    assert len(got) == len(rows)  # one audit row per candidate
    assert got == _expected(sample_data, mode)
    sends = [r for r in rows if r.decision.value == "send"]
    assert [d.key for d in deliveries] == [r.delivery_key for r in sends]
    assert [d.seq for d in deliveries] == list(range(1, len(sends) + 1))
