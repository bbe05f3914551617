"""Benchmark: `db import` of a demo data set into fresh databases, measured in one run.

    .venv/bin/python bench/import_speed.py [--customers 100000] [--data DIR]
        [--postgresql ADMIN_URL] [--mariadb ADMIN_URL] [--baseline REV]

Each import runs in a fresh subprocess into a new, empty database (a SQLite file; a database
created on the PostgreSQL or MariaDB server given by its admin URL and dropped afterwards), and
reports wall and CPU seconds, rows per second and peak RSS. `--baseline REV` also imports the
same files with `jobs/source/importer.py` as it was at git revision REV (loaded from `git show`,
never from a second copy in the tree) and prints the speed-up, so that "N times faster" is
measured in the same run on the same machine (issue 10: ≥ 3 × the speed before it).
`--data DIR` keeps the generated CSV files in DIR and reuses them; a DIR that already holds
CSV files made elsewhere (e.g. `bench/resolve.py --data`'s `DIR/csv`) is imported as it is.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jobs.source.engine import make_engine  # noqa: E402
from jobs.source.models import init_source_schema  # noqa: E402
from tools.demo_data import generate  # noqa: E402

MARKER = "bench-import.json"


def _maxrss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _importer(rev: str | None) -> ModuleType:
    """The importer module of the working tree, or as of git revision `rev`."""
    if rev is None:
        from jobs.source import importer

        return importer
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:jobs/source/importer.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="swmail-bench-importer-"))
    path = folder / "importer_baseline.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("importer_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["importer_baseline"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_phase(url: str, data: Path, rev: str | None) -> dict[str, Any]:
    """One import in this process: seconds, CPU seconds, rows, peak RSS."""
    module = _importer(rev)
    engine = make_engine(url)
    init_source_schema(engine)
    before = _maxrss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    report = module.import_dir(engine, data)
    result = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "rows": report.total_rows,
        "rss_before_mb": before,
        "rss_peak_mb": _maxrss_mb(),
    }
    engine.dispose()
    return result


@contextmanager
def fresh_database(kind: str, admin_url: str | None, work: Path) -> Iterator[str]:
    """The URL of a new, empty database of `kind`; removed afterwards."""
    if kind == "sqlite":
        path = work / f"import-{uuid.uuid4().hex[:8]}.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in work.glob(f"{path.name}*"):
                leftover.unlink()
        return
    assert admin_url is not None
    name = f"swmail_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    quote = admin.dialect.identifier_preparer.quote
    create = f"CREATE DATABASE {quote(name)}"
    if kind == "postgresql":
        create += " ENCODING 'UTF8' TEMPLATE template0"
    else:
        create += " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    with admin.connect() as conn:
        conn.exec_driver_sql(create)
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if kind == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)}{force}")
        admin.dispose()


def measure(url: str, data: Path, rev: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", "--url", url, "--data", str(data)]
    if rev is not None:
        command += ["--baseline", rev]
    done = subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def prepare(data: Path, customers: int) -> None:
    marker = data / MARKER
    if marker.is_file() and json.loads(marker.read_text())["customers"] == customers:
        print(f"reusing {data} ({customers:,} customers)", file=sys.stderr)
        return
    if not marker.is_file() and (data / "customers.csv").is_file():
        # A data set made elsewhere (bench/resolve.py --data): imported as it is, never
        # overwritten (it may be shared and read-only).
        print(f"importing the CSV files of {data} as they are", file=sys.stderr)
        return
    generate(data, customers=customers)
    marker.write_text(json.dumps({"customers": customers}), encoding="utf-8")


def _line(label: str, got: dict[str, Any]) -> str:
    rate = got["rows"] / got["seconds"] if got["seconds"] else 0.0
    return (
        f"{label:28} {got['seconds']:8.2f} s wall {got['cpu_seconds']:8.2f} s CPU"
        f"  {got['rows']:>10,} rows  {rate:>9,.0f} rows/s  peak {got['rss_peak_mb']:.0f} MB"
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="keep (and reuse) the CSV files in this folder")
    parser.add_argument("--postgresql", metavar="ADMIN_URL", help="also import into PostgreSQL")
    parser.add_argument("--mariadb", metavar="ADMIN_URL", help="also import into MariaDB")
    parser.add_argument("--baseline", metavar="REV", help="also the importer of git revision REV")
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.phase:
        print(json.dumps(run_phase(args.url, args.data, args.baseline)))
        return 0
    work = Path(tempfile.mkdtemp(prefix="swmail-bench-import-"))
    data = args.data if args.data is not None else work / "csv"
    try:
        data.mkdir(parents=True, exist_ok=True)
        prepare(data, args.customers)
        targets = [("sqlite", None)]
        if args.postgresql:
            targets.append(("postgresql", args.postgresql))
        if args.mariadb:
            targets.append(("mariadb", args.mariadb))
        for kind, admin_url in targets:
            with fresh_database(kind, admin_url, work) as url:
                current = measure(url, data, None)
            print(_line(f"{kind} (this tree)", current))
            if args.baseline:
                with fresh_database(kind, admin_url, work) as url:
                    baseline = measure(url, data, args.baseline)
                print(_line(f"{kind} ({args.baseline})", baseline))
                print(
                    f"{kind} speed-up: {baseline['seconds'] / current['seconds']:.2f} x wall,"
                    f" {baseline['cpu_seconds'] / current['cpu_seconds']:.2f} x client CPU"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
