"""The generated demo imports into every supported database exactly as written."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from jobs.source.engine import make_engine
from jobs.source.importer import import_dir
from jobs.source.models import init_source_schema
from tests.demo.demo_set import read_demo
from tools.demo_data import FILES, generate


def test_demo_of_300_customers_imports(db_url: str, tmp_path: Path) -> None:
    generate(tmp_path, customers=300, seed=20261201)
    demo = read_demo(tmp_path)
    engine = make_engine(db_url)
    try:
        init_source_schema(engine)
        report = import_dir(engine, tmp_path)
        assert report.absent == ()
        assert dict(report.counts) == {name.removesuffix(".csv"): len(demo[name]) for name in FILES}
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT corp_id, company_name FROM customers"))
            stored = {row.corp_id: row.company_name for row in rows}
            names = set(conn.execute(sa.text("SELECT name FROM mypage_contacts")).scalars())
    finally:
        engine.dispose()
    # 𠮷 (4-byte UTF-8), <&> and control characters survive the round trip unchanged
    assert any("𠮷" in name for name in stored.values())
    assert any("\r\n" in name for name in names)
    assert stored == {r["corp_id"]: r["company_name"] for r in demo["customers.csv"]}
    assert {r["name"] for r in demo["mypage_contacts.csv"]} == names
