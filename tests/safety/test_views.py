"""Views (issue 6): a source whose §3 tables are views (a read-only replica) is accepted.

SPEC §8: `database.url` may be a replica "whose tables or views follow §3". Here the imported
tables are renamed to `base_*` and each §3 name becomes a view over its table, on each database;
`resolve`, `dry-run`, `explain` and `run` (ledger elsewhere) give the same answers as on tables.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from jobs.source.engine import make_engine
from jobs.source.models import source_tables
from tests.run.conftest import Site
from tests.safety.conftest import AS_OF, CAMPAIGN, Cli
from tests.smtpd import SmtpServer

MERGED_PERSON = "zeirishi0@kaikei.example.jp"


def turn_tables_into_views(url: str) -> None:
    """Rename each §3 table to base_<name> and put a view with the §3 name over it."""
    engine = make_engine(url)
    try:
        preparer = engine.dialect.identifier_preparer
        with engine.begin() as conn:
            for table in source_tables():
                name = preparer.quote(table.name)
                base = preparer.quote(f"base_{table.name}")
                conn.exec_driver_sql(f"ALTER TABLE {name} RENAME TO {base}")
                conn.exec_driver_sql(f"CREATE VIEW {name} AS SELECT * FROM {base}")
        inspector = sa.inspect(engine)
        assert set(inspector.get_view_names()) >= {t.name for t in source_tables()}
        assert not {t.name for t in source_tables()} & set(inspector.get_table_names())
    finally:
        engine.dispose()


def expected(sample_data: Path) -> list[dict[str, str]]:
    with (sample_data / "expected_address.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_read_commands_and_run_work_on_views(
    db_url: str,
    swmail: Cli,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    sample_data: Path,
    tmp_path: Path,
) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    site = make_site(db_url, ledger_url=ledger_url)
    site.prepare(sample_data)
    turn_tables_into_views(db_url)
    swmail.env.update(SWMAIL_DATABASE_URL=db_url, SWMAIL_DATABASE_LEDGER_URL=ledger_url)
    rows = expected(sample_data)
    sends = sum(r["decision"] == "send" for r in rows)

    resolved = swmail("resolve", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--json")
    assert resolved.code == 0, resolved.err
    counts = json.loads(resolved.out)
    assert counts["deliveries"] == sends
    assert counts["candidates"] == len(rows)

    out = tmp_path / "dry"
    dry = swmail("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", str(out))
    assert dry.code == 0, dry.err
    assert len(list((out / "messages").glob("*.eml"))) == sends

    explained = swmail(
        "explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--email", MERGED_PERSON
    )
    assert explained.code == 0, explained.err
    assert "merged into:" in explained.out

    server = smtp_server()
    sent = swmail(
        "run",
        "--campaign",
        CAMPAIGN,
        "--as-of",
        AS_OF,
        SWMAIL_SMTP_HOST=server.host,
        SWMAIL_SMTP_PORT=str(server.port),
    )
    assert sent.code == 0, (sent.out, sent.err)
    assert f"this pass: sent {sends:,}," in sent.out
    assert len(server.handler.messages) == sends
