"""Benchmark: resolution against a raw scan of the same rows, measured in the same run.

    .venv/bin/python bench/resolve.py [--customers 100000] [--data DIR] [--url URL] [--runs 1]
                                      [--freeze [--ledger-url URL]] [--tracemalloc]
                                      [--profile 25]

Phases over one source database, each in a fresh subprocess so that none inherits another's
heap, caches or peak memory:

- scan: the rows of the tables a resolution reads (customers, mypage_contacts, every user,
  active contracts, partners, partner_contacts, suppressions), with plain SQL on the DB-API
  cursor into tuples, in the loader's keyset pages (`jobs.source.loader.PAGE_SIZE` parents, then
  the children of that id range). This is issue 10's yardstick and stays whole: the resolution
  itself reads fewer of these rows (only users that can be candidates, contracts only for a
  products filter), which is one of the ways it got cheaper;
- resolve: `jobs.resolution.pipeline.resolve_campaign` as `swmail resolve` runs it (counts only,
  progress off), every audit row consumed;
- freeze (`--freeze`): the first `run`'s resolution frozen into a new ledger
  (`jobs.delivery.coordinator.freeze_resolution`: audit rows, deliveries, Message-IDs), no send:
  a temporary SQLite file, or with `--ledger-url` a new database created on that PostgreSQL or
  MariaDB server for each freeze and dropped after it (the URL's own database is only used to
  create it).

Prints each phase's wall and CPU seconds and peak resident memory, and the ratios to the scan: a
ratio, not an absolute figure, is what can be compared across machines and runs (issue 10's
target: 1M customers within 3x the scan and under 300 MB). On a shared machine the CPU ratio is
the steadier one; with PostgreSQL the server's own work shows only in the wall time.
`--data DIR` keeps the generated CSV files and SQLite database in DIR and reuses them on the next
run; without it they live in a temporary folder that is removed at the end. `--url` benchmarks
an existing database instead.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jobs.config.campaign import load_campaign  # noqa: E402
from jobs.source.engine import make_engine  # noqa: E402
from jobs.source.importer import import_dir  # noqa: E402
from jobs.source.loader import PAGE_SIZE, RawQueries  # noqa: E402
from jobs.source.models import (  # noqa: E402
    Customer,
    Partner,
    PartnerContact,
    Suppression,
    init_source_schema,
)
from resolver.model import ProductStatus  # noqa: E402
from tools.demo_data import DEMO_AS_OF, generate  # noqa: E402

DB_FILE = "source.sqlite3"
CSV_DIR = "csv"
MARKER = "bench-resolve.json"  # what the database in --data was built from


# --- the raw scan -------------------------------------------------------------------------------


def _columns(table: sa.Table, names: Sequence[str]) -> str:
    # Names come from the models, so the scan follows a renamed column like the loader does.
    return ", ".join(table.c[name].name for name in names)


class _RawScan:
    """The resolution's reads as plain SQL: the loader's own customer queries, then partners."""

    def __init__(self, paramstyle: str) -> None:
        mark = "?" if paramstyle == "qmark" else "%s"
        loader = RawQueries(paramstyle)  # what `iter_customer_rows` runs, page by page
        self.customers_first = loader.customer_page(after=None, stop=False, limit=PAGE_SIZE)
        self.customers_next = loader.customer_page(after=">", stop=False, limit=PAGE_SIZE)
        self.customer_children = (loader.mypage, loader.users)
        self.contracts = loader.contracts
        partners = Partner.__table__
        pcs = PartnerContact.__table__
        assert isinstance(partners, sa.Table) and isinstance(pcs, sa.Table)
        between = f"BETWEEN {mark} AND {mark}"
        partner_cols = _columns(
            partners, ("partner_id", "name", "kind", "status", "postal_code", "address")
        )
        self.partners_first = (
            f"SELECT {partner_cols} FROM {partners.name} ORDER BY partner_id LIMIT {PAGE_SIZE}"
        )
        self.partners_next = (
            f"SELECT {partner_cols} FROM {partners.name} WHERE partner_id > {mark}"
            f" ORDER BY partner_id LIMIT {PAGE_SIZE}"
        )
        self.partner_contacts = (
            f"SELECT {_columns(pcs, _PARTNER_CONTACT_COLUMNS)} FROM {pcs.name}"
            f" WHERE partner_id {between} ORDER BY partner_id, contact_id"
        )
        self.suppressions = f"SELECT email FROM {Suppression.__tablename__}"
        self.count = f"SELECT count(*) FROM {Customer.__tablename__}"


_PARTNER_CONTACT_COLUMNS = (
    "partner_id",
    "contact_id",
    "name",
    "email",
    "role",
    "certified_until",
    "status",
)


def _keyset(cursor: Any, first: str, following: str) -> Iterator[list[tuple[Any, ...]]]:
    """Pages of parent rows, `key > last` like `jobs.source.loader._pages`."""
    cursor.execute(first)
    while True:
        page: list[tuple[Any, ...]] = cursor.fetchall()
        if not page:
            return
        yield page
        if len(page) < PAGE_SIZE:
            return
        cursor.execute(following, (page[-1][0],))


def raw_scan(engine: sa.Engine) -> int:
    """Read every row the resolution reads into tuples; the number of rows."""
    sql = _RawScan(engine.dialect.paramstyle)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        rows = 0
        cursor.execute(sql.suppressions)
        rows += len(cursor.fetchall())
        cursor.execute(sql.count)
        cursor.fetchall()
        for page in _keyset(cursor, sql.customers_first, sql.customers_next):
            span = (page[0][0], page[-1][0])
            rows += len(page)
            for stmt in sql.customer_children:
                cursor.execute(stmt, span)
                rows += len(cursor.fetchall())
            cursor.execute(sql.contracts, (ProductStatus.ACTIVE.value, *span))
            rows += len(cursor.fetchall())
        for page in _keyset(cursor, sql.partners_first, sql.partners_next):
            rows += len(page)
            cursor.execute(sql.partner_contacts, (page[0][0], page[-1][0]))
            rows += len(cursor.fetchall())
        cursor.close()
        return rows
    finally:
        raw.rollback()
        raw.close()


# --- one phase, in its own process --------------------------------------------------------------


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (a parallel count's workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _maxrss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    # VmHWM belongs to this process's address space. ru_maxrss is not enough on Linux: it keeps
    # the peak of the process before exec, i.e. of the parent that forked it (the data build).
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


@contextmanager
def _new_ledger(server_url: str | None) -> Iterator[str]:
    """The URL of an empty ledger database: a temporary SQLite file, or a new server database."""
    if not server_url:
        with tempfile.TemporaryDirectory(prefix="swmail-bench-ledger-") as folder:
            yield f"sqlite:///{Path(folder) / 'ledger.sqlite3'}"
        return
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"swmail_bench_ledger_{uuid.uuid4().hex[:12]}"
    quote = admin.dialect.identifier_preparer.quote
    with admin.connect() as conn:
        if admin.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"CREATE DATABASE {quote(name)} ENCODING 'UTF8' TEMPLATE template0"
            )
        else:
            conn.exec_driver_sql(f"CREATE DATABASE {quote(name)} CHARACTER SET utf8mb4")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)}{force}")
        admin.dispose()


def _freeze(url: str, campaign_id: str, as_of: date, ledger_url: str | None) -> tuple[int, int]:
    """Resolve and freeze into a new ledger; (audit rows, deliveries)."""
    from benchlib import shipped_campaign

    from jobs.config.settings import MessageSettings
    from jobs.delivery.coordinator import freeze_resolution
    from jobs.ledger import upgrade
    from jobs.messages.compose import Composer

    source = make_engine(url)
    campaign, templates = shipped_campaign()
    if campaign.id != campaign_id:
        campaign = load_campaign(REPO / "config" / "campaigns" / f"{campaign_id}.toml")
    with _new_ledger(ledger_url) as new_url:
        ledger = make_engine(new_url)
        upgrade(ledger)
        composer = Composer(campaign.id, "bench", as_of, templates, MessageSettings())
        run, _summary = freeze_resolution(source, ledger, campaign, composer, as_of=as_of)
        ledger.dispose()
    source.dispose()
    return run.candidates, run.deliveries


def run_phase(
    phase: str,
    url: str,
    campaign_id: str,
    as_of: date,
    trace: bool,
    ledger_url: str | None = None,
) -> dict[str, Any]:
    """Measure one phase in this process: seconds, rows, peak RSS (and tracemalloc peak)."""
    from jobs.resolution.pipeline import resolve_campaign

    engine = make_engine(url)
    campaign = load_campaign(REPO / "config" / "campaigns" / f"{campaign_id}.toml")
    before = _maxrss_mb()
    if trace:
        import tracemalloc

        tracemalloc.start()
    started = time.perf_counter()
    cpu_started = time.process_time() + _children_cpu()
    deliveries = 0
    if phase == "scan":
        rows = raw_scan(engine)
    elif phase == "freeze":
        rows, deliveries = _freeze(url, campaign_id, as_of, ledger_url)
    else:
        # As `swmail resolve` runs it: counts only, the deliveries' contents not kept.
        resolved = resolve_campaign(engine, campaign, as_of, progress=False, keep_deliveries=False)
        resolved.close()
        rows = resolved.summary.candidates
        deliveries = resolved.summary.deliveries
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "phase": phase,
        "seconds": seconds,
        # A parallel count's worker processes included (jobs.resolution.parallel).
        "cpu_seconds": time.process_time() + _children_cpu() - cpu_started,
        "workers_rss_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "rows": rows,
        "rss_before_mb": before,
        "rss_peak_mb": _maxrss_mb(),
    }
    if trace:
        result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    result["deliveries"] = deliveries
    engine.dispose()
    return result


def profile_phase(url: str, campaign_id: str, as_of: date, top: int) -> None:
    """cProfile the resolution in this process; print the top entries by own time."""
    import cProfile
    import pstats

    from jobs.resolution.pipeline import resolve_campaign

    engine = make_engine(url)
    campaign = load_campaign(REPO / "config" / "campaigns" / f"{campaign_id}.toml")
    profiler = cProfile.Profile()
    profiler.enable()
    resolve_campaign(engine, campaign, as_of, progress=False, keep_deliveries=False).close()
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def _child(args: argparse.Namespace, phase: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        __file__,
        "--phase",
        phase,
        "--url",
        args.url,
        "--campaign",
        args.campaign,
        "--as-of",
        args.as_of.isoformat(),
        *(["--ledger-url", args.ledger_url] if args.ledger_url else []),
        *extra,
    ]
    return subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE)


def measure(args: argparse.Namespace, phase: str, trace: bool = False) -> dict[str, Any]:
    """One phase in a fresh interpreter, so peaks and caches never mix between phases."""
    done = _child(args, phase, *(["--tracemalloc"] if trace else []))
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the data set -------------------------------------------------------------------------------


def prepare(data: Path, customers: int) -> str:
    """The SQLite URL of a demo data set of `customers` in `data`, built unless already there."""
    db = data / DB_FILE
    marker = data / MARKER
    if db.is_file() and marker.is_file():
        built = json.loads(marker.read_text(encoding="utf-8"))
        if built.get("customers") == customers:
            print(f"reusing {db} ({customers:,} customers)", file=sys.stderr)
            return f"sqlite:///{db}"
        print(f"{db} holds {built.get('customers')} customers: rebuilding", file=sys.stderr)
        db.unlink()
    started = time.perf_counter()
    generate(data / CSV_DIR, customers=customers)
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    init_source_schema(engine)
    import_dir(engine, data / CSV_DIR)
    engine.dispose()
    marker.write_text(json.dumps({"customers": customers}), encoding="utf-8")
    print(
        f"built {db} ({customers:,} customers) in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    return url


# --- the report ---------------------------------------------------------------------------------


def _span(values: Sequence[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if len(values) == 1 else f"{low:{fmt}}–{high:{fmt}}"


Phases = dict[str, dict[str, Any]]


def report(runs: list[Phases], traced: float | None) -> None:
    for i, phases in enumerate(runs, 1):
        scan = phases["scan"]
        parts = [
            f"scan {scan['seconds']:6.2f}s wall {scan['cpu_seconds']:6.2f}s CPU"
            f" ({scan['rows']:,} rows, peak {scan['rss_peak_mb']:.0f} MB)"
        ]
        for name in ("resolve", "freeze"):
            if name in phases:
                got = phases[name]
                parts.append(
                    f"{name} {got['seconds']:6.2f}s wall {got['cpu_seconds']:6.2f}s CPU"
                    f" ({got['rows']:,} candidates, {got['deliveries']:,} deliveries,"
                    f" peak {got['rss_peak_mb']:.0f} MB)"
                    f" ratio {got['seconds'] / scan['seconds']:.2f} wall"
                    f" {got['cpu_seconds'] / scan['cpu_seconds']:.2f} CPU"
                )
        print(f"run {i}: " + " | ".join(parts))
    print(f"{'raw scan:':20} {_span([p['scan']['seconds'] for p in runs], '.2f')} s wall")
    for name in ("resolve", "freeze"):
        measured = [p for p in runs if name in p]
        if not measured:
            continue
        wall = [p[name]["seconds"] / p["scan"]["seconds"] for p in measured]
        cpu = [p[name]["cpu_seconds"] / p["scan"]["cpu_seconds"] for p in measured]
        peaks = [p[name]["rss_peak_mb"] for p in measured]
        bases = [p[name]["rss_before_mb"] for p in measured]
        workers = [p[name].get("workers_rss_peak_mb", 0.0) for p in measured]
        seconds = _span([p[name]["seconds"] for p in measured], ".2f")
        print(f"{name + ':':20} {seconds} s wall")
        print(f"{'ratio ' + name + '/scan:':20} {_span(wall, '.2f')} wall, {_span(cpu, '.2f')} CPU")
        print(
            f"{name + ' peak RSS:':20} {_span(peaks, '.0f')} MB (of which"
            f" {_span(bases, '.0f')} MB interpreter, imports and engine before it started)"
        )
        if any(workers):
            print(f"{'largest worker:':20} {_span(workers, '.0f')} MB peak RSS (a parallel count)")
    if traced is not None:
        print(f"resolution peak traced Python heap (tracemalloc): {traced:.0f} MB")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="keep (and reuse) the data set in this folder")
    parser.add_argument("--url", help="benchmark this existing database instead of a demo set")
    parser.add_argument("--campaign", default="maintenance-notice")
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEMO_AS_OF)
    parser.add_argument("--runs", type=int, default=1, help="scan/resolve pairs to measure")
    parser.add_argument(
        "--freeze", action="store_true", help="also the first run's resolve + freeze per run"
    )
    parser.add_argument(
        "--ledger-url",
        help="freeze into a new database on this PostgreSQL/MariaDB server (default: SQLite)",
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also one traced resolution (slower)"
    )
    parser.add_argument("--profile", type=int, metavar="N", help="print cProfile top N entries")
    parser.add_argument(
        "--phase", choices=("scan", "resolve", "freeze", "profile"), help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.phase == "profile":
        profile_phase(args.url, args.campaign, args.as_of, args.profile or 25)
        return 0
    if args.phase is not None:
        result = run_phase(
            args.phase, args.url, args.campaign, args.as_of, args.tracemalloc, args.ledger_url
        )
        print(json.dumps(result))
        return 0

    temporary = None
    if args.url is None:
        data = args.data
        if data is None:
            temporary = data = Path(tempfile.mkdtemp(prefix="swmail-bench-resolve-"))
        data.mkdir(parents=True, exist_ok=True)
        args.url = prepare(data, args.customers)
    try:
        names = ("scan", "resolve", "freeze") if args.freeze else ("scan", "resolve")
        runs = [{name: measure(args, name) for name in names} for _ in range(args.runs)]
        traced = None
        if args.tracemalloc:
            traced = float(measure(args, "resolve", trace=True)["traced_peak_mb"])
        report(runs, traced)
        if args.profile:
            print(_child(args, "profile", "--profile", str(args.profile)).stdout)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
