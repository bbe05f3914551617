"""Benchmark: one sending process against a coordinator plus one `worker` on one PostgreSQL ledger.

    .venv/bin/python bench/scale_out.py [--customers 3000] [--connections 4] [--sink-port P]

Both cases send the same frozen deliveries (two run keys of one campaign, same data, same
database) into the same discarding sink, as the operator would: `run` alone, then `run` and
`worker --run RUN_ID` started together. Each rate is read from the ledger (deliveries sent
between the first and the last `sent_at` of the run), so process start-up and the first run's
resolution are not counted; both runs are frozen first by a `run` against a closed port.

The sink: `--postfix DIR` starts Postfix's smtp-sink from an unpacked `postfix` package
(`apt-get download postfix && dpkg -x postfix_*.deb DIR`; C, little CPU: the fastest here),
`--sink-port` uses one already running, and by default an aiosmtpd discarding sink runs in its
own process (it needs a core of its own, which lowers both figures).

Prints a table, the ratio (target: at least 1.7) and the machine's load: on a shared machine
the absolute figures move, the ratio less so.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from benchlib import REPO, cpu_seconds, discarding_sink  # puts the project on sys.path

from jobs.ledger import upgrade
from jobs.ledger.models import DeliveryRow, RunRow
from jobs.source.engine import make_engine
from jobs.source.importer import import_dir
from jobs.source.models import init_source_schema
from tools.demo_data import generate

CAMPAIGN = "maintenance-notice"
AS_OF = "2026-12-01"
PG_ADMIN = os.environ.get("SWMAIL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TARGET = 1.7


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A new PostgreSQL database for this run, dropped afterwards."""
    name = f"swmail_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def fastest_sink(port: int | None, postfix: Path | None) -> Iterator[tuple[int, str]]:
    """The sink to send into: a given port, Postfix's smtp-sink, or an aiosmtpd process."""
    if port is not None:
        yield port, f"given sink on port {port}"
        return
    if postfix is None:
        with discarding_sink() as sink:
            yield sink.port, "aiosmtpd discarding sink (separate process)"
        return
    chosen = closed_port()  # smtp-sink cannot report a port 0 choice; a free one, now
    env = {**os.environ, "LD_LIBRARY_PATH": str(postfix / "usr/lib/postfix")}
    as_root = ["-u", "nobody"] if os.geteuid() == 0 else []  # smtp-sink refuses to stay root
    process = subprocess.Popen(
        [str(postfix / "usr/sbin/smtp-sink"), *as_root, f"127.0.0.1:{chosen}", "256"], env=env
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(chosen):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"smtp-sink did not start on port {chosen}")
            time.sleep(0.05)
        yield chosen, "Postfix smtp-sink"
    finally:
        process.terminate()
        process.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerCpu:
    """CPU seconds of the PostgreSQL backends serving the scratch database while a case runs.

    Client CPU (every `swmail` process, wall time included) is what one core gives; the
    server's CPU per message competes with it for the same two cores. Backends are found in
    `pg_stat_activity` and read from /proc every 0.1 s (the server must run on this machine);
    a backend's last fraction of a sample interval before it exits is missed.
    """

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        self._seen: dict[int, float] = {}
        self._first: dict[int, float] = {}
        self._stop = threading.Event()
        self._first_pass = True  # backends already open before the case: count from now
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def seconds(self) -> float:
        return sum(self._seen[pid] - self._first.get(pid, 0.0) for pid in self._seen)

    def _sample(self) -> None:
        with self._engine.connect() as conn:
            own = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            while True:
                pids = conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> :own"
                    ),
                    {"own": own},
                ).scalars()
                for pid in pids:
                    with contextlib.suppress(OSError):
                        cpu = cpu_seconds(pid)
                        self._first.setdefault(pid, cpu if self._first_pass else 0.0)
                        self._seen[pid] = cpu
                conn.rollback()
                self._first_pass = False
                if self._stop.wait(0.1):
                    return

    def __enter__(self) -> ServerCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()


def environment(url: str, port: int, connections: int) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SWMAIL_")}
    return {
        **clean,
        "SWMAIL_CONFIG": str(REPO / "config" / "settings.toml"),
        "SWMAIL_DATABASE_URL": url,
        "SWMAIL_SMTP_HOST": "127.0.0.1",
        "SWMAIL_SMTP_PORT": str(port),
        "SWMAIL_SMTP_CONNECTIONS": str(connections),
        "SWMAIL_SMTP_RATE_PER_SECOND": "0",
        "SWMAIL_SMTP_MAX_ATTEMPTS": "1",
        "SWMAIL_SMTP_TIMEOUT_SECONDS": "30",
    }


def command(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "run_campaign.py"), *args]


def run_args(key: str) -> list[str]:
    return command("run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--run-key", key)


def freeze(url: str, key: str, connections: int) -> None:
    """Resolve and freeze the run without sending: the relay is a closed port (exit 3)."""
    frozen = subprocess.run(
        run_args(key),
        env=environment(url, closed_port(), connections),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if frozen.returncode != 3:
        raise SystemExit(f"freezing {key} failed ({frozen.returncode}): {frozen.stderr}")


def send(url: str, key: str, port: int, connections: int, workers: int) -> None:
    env = environment(url, port, connections)
    processes = [subprocess.Popen(run_args(key), env=env, cwd=REPO, stdout=subprocess.DEVNULL)]
    for _ in range(workers):
        worker = command("worker", "--run", f"{CAMPAIGN}/{key}")
        processes.append(subprocess.Popen(worker, env=env, cwd=REPO, stdout=subprocess.DEVNULL))
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"a sender of {key} failed: exit codes {codes}")


def measured(url: str, key: str) -> tuple[int, float]:
    """(deliveries sent, seconds between the first and the last confirmation) of one run."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            sent, first, last = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.min(DeliveryRow.sent_at),
                    sa.func.max(DeliveryRow.sent_at),
                )
                .join(RunRow, RunRow.pk == DeliveryRow.run_pk)
                .where(RunRow.run_id == f"{CAMPAIGN}/{key}", DeliveryRow.sent_at.is_not(None))
            ).one()
    finally:
        engine.dispose()
    if first is None or last is None:
        return 0, 0.0
    return int(sent), (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--sink-port", type=int, default=None, help="a sink already running")
    parser.add_argument(
        "--postfix",
        type=Path,
        default=None,
        help="an unpacked postfix package (apt-get download postfix; dpkg -x): use its smtp-sink",
    )
    args = parser.parse_args()

    with scratch_database() as url, fastest_sink(args.sink_port, args.postfix) as (port, sink_name):
        data = Path(f"/tmp/swmail-bench-scale-{uuid.uuid4().hex[:8]}")
        generate(data, customers=args.customers)
        engine = make_engine(url)
        try:
            init_source_schema(engine)
            import_dir(engine, data)
            upgrade(engine)
        finally:
            engine.dispose()
        cases = (("1 process (run)", "scale-1", 0), ("run + 1 worker", "scale-2", 1))
        for _, key, _ in cases:
            freeze(url, key, args.connections)
        rows = []
        for label, key, workers in cases:
            started = time.perf_counter()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            with ServerCpu(url) as server:
                send(url, key, port, args.connections, workers)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            client = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            wall = time.perf_counter() - started
            sent, seconds = measured(url, key)
            rows.append(
                (
                    label,
                    sent,
                    seconds,
                    sent / seconds if seconds else 0.0,
                    wall,
                    client / sent * 1e6 if sent else 0.0,
                    server.seconds / sent * 1e6 if sent else 0.0,
                )
            )

    load = os.getloadavg()
    print(f"scale-out on PostgreSQL, sink: {sink_name}, {args.connections} connections each")
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(
        f"{'case':<18} {'messages':>8} {'seconds':>8} {'msg/s':>8} {'wall s':>7}"
        f" {'client CPU µs/msg':>18} {'PostgreSQL CPU µs/msg':>22}"
    )
    for label, sent, seconds, rate, wall, client, server_cpu in rows:
        print(
            f"{label:<18} {sent:>8,} {seconds:>8.2f} {rate:>8,.0f} {wall:>7.1f}"
            f" {client:>18,.0f} {server_cpu:>22,.0f}"
        )
    ratio = rows[1][3] / rows[0][3] if rows[0][3] else 0.0
    verdict = "meets" if ratio >= TARGET else "below"
    print(f"ratio (run + worker) / (run alone): {ratio:.2f}x ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
