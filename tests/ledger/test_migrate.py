"""The ledger schema is Alembic-managed: upgrades are idempotent and match the models."""

from __future__ import annotations

import sqlalchemy as sa

from jobs.ledger import current_revision, head_revision, list_runs, schema_diff, upgrade
from jobs.ledger.migrate import VERSION_TABLE, downgrade
from jobs.ledger.models import LedgerBase
from tests.ledger.conftest import freeze


def test_upgrade_creates_every_table_and_matches_the_models(engine: sa.Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert set(LedgerBase.metadata.tables) | {VERSION_TABLE} <= tables
    assert schema_diff(engine) == []


def test_second_upgrade_is_a_no_op_that_keeps_the_data(engine: sa.Engine) -> None:
    upgrade(engine)
    run = freeze(engine, 3)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert list_runs(conn) == [run]


def test_downgrade_and_upgrade_round_trip(engine: sa.Engine) -> None:
    upgrade(engine)
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert not set(LedgerBase.metadata.tables) & set(sa.inspect(engine).get_table_names())
    upgrade(engine)
    assert schema_diff(engine) == []


def test_schema_diff_notices_a_drift(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE swmail_warnings ADD COLUMN extra INTEGER"))
    assert [d[0] for d in schema_diff(engine)] == ["remove_column"]


def test_other_tables_in_the_database_are_left_alone(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (corp_id VARCHAR(10) PRIMARY KEY)"))
    upgrade(engine)
    assert "customers" in sa.inspect(engine).get_table_names()
    assert schema_diff(engine) == []
