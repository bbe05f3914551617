"""Issue 10: the freeze on each driver's bulk path writes exactly what SQLAlchemy Core wrote.

The first `run` now freezes its rows as plain tuples (COPY on PostgreSQL, `executemany` on
SQLite, multi-row INSERTs on MariaDB; `jobs.source.bulk`). The same resolution is frozen twice
into one ledger, once by `create_run` and once by the Core path it replaced
(`tests/ledger/reference_freeze.py`), and the two runs' rows are compared as the driver returns
them: every column, every value and its type, and the deliveries' ids in the same order,
on the sample set and on a generated set, in both dedupe modes, on all three databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

import jobs.delivery.coordinator
from jobs.config.campaign import Campaign, load_campaign
from jobs.config.settings import MessageSettings
from jobs.delivery.coordinator import freeze_resolution
from jobs.ledger import RunRecord, create_run
from jobs.messages.compose import Composer
from jobs.messages.render import load_template_set
from jobs.source.engine import make_engine
from jobs.source.importer import import_dir
from jobs.source.models import init_source_schema
from resolver.model import DedupeMode
from tests.conftest import REPO, SAMPLE_DATA
from tests.ledger import factory, reference_freeze
from tools.demo_data import DEMO_AS_OF, generate

REFERENCE = "reference"  # the run key of the reference run; the bulk run has the as-of date

# (table, the run's rows in their natural order); `id` is compared relative to the run's first
_TABLES = (
    ("swmail_audit_rows", "row_no"),
    ("swmail_deliveries", "id"),
    ("swmail_warnings", "warning_no"),
)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """SQLite source databases of the sample set and of a generated demo set (built once)."""
    folder = tmp_path_factory.mktemp("bulk-freeze-sources")
    generated = folder / "generated-csv"
    generate(generated, customers=300, seed=10)
    urls = {}
    for name, data in (("sample", SAMPLE_DATA), ("generated", generated)):
        url = f"sqlite:///{folder / name}.sqlite3"
        engine = make_engine(url)
        init_source_schema(engine)
        import_dir(engine, data)
        engine.dispose()
        urls[name] = url
    yield urls


def _campaign(dedupe: DedupeMode) -> tuple[Campaign, Composer]:
    shipped = load_campaign(REPO / "config" / "campaigns" / "maintenance-notice.toml")
    campaign = replace(shipped, policy=replace(shipped.policy, dedupe=dedupe))
    templates = load_template_set(REPO / "templates", campaign.template, campaign.folder)
    as_of = DEMO_AS_OF
    return campaign, Composer(campaign.id, as_of.isoformat(), as_of, templates, MessageSettings())


def _contents(ledger: sa.Engine, run: RunRecord) -> dict[str, list[tuple[Any, ...]]]:
    """Every frozen row of `run` as the driver returns it, without the run's own key."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with ledger.connect() as conn:
        for table, order in _TABLES:
            rows = conn.exec_driver_sql(
                f"SELECT * FROM {table} WHERE run_pk = {run.pk} ORDER BY {order}"
            )
            names = list(rows.keys())
            got = [tuple(row) for row in rows]
            run_pk = names.index("run_pk")
            got = [row[:run_pk] + row[run_pk + 1 :] for row in got]
            if table == "swmail_deliveries":
                # ids in seq order, consecutive; compared from the run's first id
                id_at, seq_at = names.index("id"), names.index("seq") - 1
                assert [row[seq_at] for row in got] == list(range(1, len(got) + 1))
                first = got[0][id_at] if got else 0
                got = [(row[id_at] - first, *row[id_at + 1 :]) for row in got]
            found[table] = got
    return found


def _counts(run: RunRecord) -> tuple[int, ...]:
    return (run.candidates, run.sends, run.merged, run.skips, run.deliveries, run.warnings)


@pytest.mark.parametrize("dedupe", list(DedupeMode))
@pytest.mark.parametrize("data", ["sample", "generated"])
def test_the_bulk_freeze_writes_what_the_core_path_wrote(
    ledger: sa.Engine,
    sources: dict[str, str],
    data: str,
    dedupe: DedupeMode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_engine(sources[data])
    campaign, composer = _campaign(dedupe)
    try:
        bulk, _summary = freeze_resolution(source, ledger, campaign, composer, as_of=DEMO_AS_OF)

        def reference(engine: sa.Engine, **kwargs: Any) -> RunRecord:
            return reference_freeze.create_run(engine, **{**kwargs, "run_key": REFERENCE})

        monkeypatch.setattr(jobs.delivery.coordinator, "create_run", reference)
        old, _summary = freeze_resolution(source, ledger, campaign, composer, as_of=DEMO_AS_OF)
    finally:
        source.dispose()
    assert old.run_key == REFERENCE
    assert bulk.deliveries > 0 and bulk.warnings > 0
    assert _counts(bulk) == _counts(old)
    assert _contents(ledger, bulk) == _contents(ledger, old)


def test_hand_made_rows_and_an_empty_run_are_written_alike(ledger: sa.Engine) -> None:
    """The ledger factory's values: Japanese text, empty strings, None where rows have no key."""
    for n, key in ((40, "bulk-40"), (0, "bulk-0")):
        runs = [
            write(
                ledger,
                campaign_id="maintenance-notice",
                run_key=f"{key}-{name}",
                as_of=factory.AS_OF,
                dedupe=DedupeMode.ADDRESS,
                template="maintenance",
                audit_rows=factory.audit_rows(n),
                deliveries=factory.deliveries(n),
                warnings=factory.warnings(n),
                message_id_for=factory.message_id_for,
            )
            for name, write in (("new", create_run), ("old", reference_freeze.create_run))
        ]
        assert _counts(runs[0]) == _counts(runs[1])
        assert _contents(ledger, runs[0]) == _contents(ledger, runs[1])
