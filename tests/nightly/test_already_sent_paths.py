"""ALREADY_SENT on both resolution paths: the fast customer path (driver rows, a memo of rule
outcomes by the facts they read) and the pure path must decide the same rows, in both dedupe
modes, over the sample data with half of an earlier run's delivery keys already sent."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from jobs.config.campaign import load_campaign
from jobs.resolution.pipeline import Resolved, stream_resolution
from jobs.source.engine import make_engine
from jobs.source.importer import import_dir
from jobs.source.models import init_source_schema
from resolver.model import CampaignPolicy, Decision, DedupeMode, Reason
from tests.conftest import REPO

AS_OF = date(2026, 12, 1)


@pytest.mark.parametrize("mode", list(DedupeMode))
def test_fast_and_pure_paths_agree_on_already_sent(
    sqlite_url: str, sample_data: Path, mode: DedupeMode
) -> None:
    engine = make_engine(sqlite_url)
    init_source_schema(engine)
    import_dir(engine, sample_data)
    shipped = load_campaign(REPO / "config" / "campaigns" / "maintenance-notice.toml")
    campaign = replace(shipped, policy=CampaignPolicy(dedupe=mode))
    with Resolved() as first:
        list(stream_resolution(engine, campaign, AS_OF, first, progress=False))
        keys = [d.key for d in first.deliveries]
    sent = frozenset(keys[::2])
    outcomes = []
    for pure in (False, True):
        with Resolved() as resolved:
            rows = list(
                stream_resolution(
                    engine, campaign, AS_OF, resolved, already_sent=sent, pure=pure, progress=False
                )
            )
            outcomes.append((rows, [d.key for d in resolved.deliveries], resolved.warnings))
    (fast_rows, fast_keys, fast_warnings), (pure_rows, pure_keys, pure_warnings) = outcomes
    assert fast_rows == pure_rows
    assert (fast_keys, fast_warnings) == (pure_keys, pure_warnings)
    assert sorted(fast_keys) == sorted(k for k in keys if k not in sent)
    skipped = [r for r in fast_rows if r.reasons and r.reasons[-1] is Reason.ALREADY_SENT]
    assert {r.decision for r in skipped} == {Decision.SKIP}
    assert len(skipped) >= len(sent)  # merged rows of a sent delivery are skipped too
    engine.dispose()
