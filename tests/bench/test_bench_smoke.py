"""The benchmarks of bench/ at a tiny size, so that they keep working (issue 10).

They measure nothing here: each runs as an operator would run it, and its report must carry the
figures the README quotes (ratios to the scan, rows imported, the speed-up to a baseline).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import PG_ADMIN_URL, REPO


def _bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / args[0]), *args[1:]],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout


def test_resolve_bench_reports_resolve_and_freeze_against_the_scan() -> None:
    out = _bench("resolve.py", "--customers", "40", "--freeze")
    assert re.search(r"ratio resolve/scan: +[0-9.]+ wall, [0-9.]+ CPU", out), out
    assert re.search(r"ratio freeze/scan: +[0-9.]+ wall, [0-9.]+ CPU", out), out
    counts = re.findall(r"\(([0-9,]+) candidates, ([0-9,]+) deliveries", out)
    # resolve and freeze agree on what they resolved, and resolved something
    assert len(counts) == 2 and counts[0] == counts[1] and counts[0][1] != "0", out


@pytest.mark.postgres
def test_resolve_bench_freezes_into_a_new_postgresql_ledger(pg_url: str) -> None:
    # pg_url: the server is up (or the test skips); the bench creates and drops its own database
    out = _bench("resolve.py", "--customers", "40", "--freeze", "--ledger-url", PG_ADMIN_URL)
    assert re.search(r"ratio freeze/scan: +[0-9.]+ wall, [0-9.]+ CPU", out), out


def test_import_bench_reports_rows_and_the_speed_up_to_a_baseline() -> None:
    out = _bench("import_speed.py", "--customers", "40", "--baseline", "HEAD")
    rows = re.findall(r"sqlite \(.*?\) .* ([0-9,]+) rows ", out)
    assert len(rows) == 2 and rows[0] == rows[1] and rows[0] != "0", out
    assert re.search(r"sqlite speed-up: [0-9.]+ x wall", out), out
