"""Ledger fixtures: a migrated ledger on each real database, and a frozen run in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from jobs.ledger import RunRecord, create_run, upgrade
from jobs.source.engine import make_engine
from resolver.model import DedupeMode
from tests.ledger import factory


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on an empty database of each kind (not migrated)."""
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def ledger(engine: sa.Engine) -> sa.Engine:
    """An engine on a migrated, empty ledger."""
    upgrade(engine)
    return engine


def freeze(engine: sa.Engine, n: int, run_key: str = "2026-12-01") -> RunRecord:
    return create_run(
        engine,
        campaign_id="maintenance-notice",
        run_key=run_key,
        as_of=factory.AS_OF,
        dedupe=DedupeMode.ADDRESS,
        template="maintenance",
        audit_rows=factory.audit_rows(n),
        deliveries=factory.deliveries(n),
        warnings=factory.warnings(n),
        message_id_for=factory.message_id_for,
    )


@pytest.fixture
def run(ledger: sa.Engine) -> RunRecord:
    """A run of 12 deliveries (16 audit rows, 2 warnings) frozen in the ledger."""
    return freeze(ledger, 12)
