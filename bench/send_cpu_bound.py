"""Benchmark: the whole `run` against Postfix's smtp-source into smtp-sink on loopback.

    .venv/bin/python bench/send_cpu_bound.py [--customers 12500] [--connections 4] [--repeat 1]
                                             [--profile FILE] [--workers N --ledger-url URL]

On loopback nothing waits for the network: the CPU each message costs sets the rate. Both
clients send the same number of messages of the same size over the same number of sessions into
the same Postfix `smtp-sink` (C, little CPU of its own):

- baseline: `smtp-source -d`, each message a copy of a real campaign message of average size;
- product: `run` of a generated demo data set (about 20,600 deliveries for 12,500 customers):
  resolve and freeze, then claim → compose → send with PIPELINING → ledger (SQLite).

Prints messages/s of each, the client's CPU per message, and the ratio run/smtp-source (target
≥ 0.25 with both cores; one `run` process uses one). `--profile FILE` writes a cProfile of the
send pass. `--workers N` adds N `swmail worker --run RUN_ID` processes next to `swmail run`
(the ledger then on a server database, `--ledger-url`): it needs the `worker` command, and says
so when this checkout does not have it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from benchlib import (  # puts the project on sys.path
    REPO,
    cpu_seconds,
    demo_database,
    postfix_sink,
    shipped_campaign,
    smtp_source,
)
from send_latency import average_message

from jobs.config.settings import MessageSettings, SmtpSettings
from jobs.delivery.coordinator import run_campaign
from jobs.delivery.sender import PassReport, SendPass
from jobs.ledger import DeliveryStatus, get_run, stats, upgrade
from jobs.messages.compose import Composer
from jobs.source.engine import make_engine
from tools.postfix import postfix_tools

AS_OF = date(2026, 12, 1)


def _has_worker_command() -> bool:
    import run_campaign as cli

    return "worker" in cli.cli.commands


def _run_in_process(
    engine: sa.Engine, smtp: SmtpSettings, run_key: str, profile: Path | None
) -> tuple[PassReport, float, float]:
    """`run` in this process: its pass report, whole-run seconds, CPU seconds of the pass."""
    campaign, templates = shipped_campaign()
    composer = Composer(campaign.id, run_key, AS_OF, templates, MessageSettings())
    cpu: list[float] = []
    run_pass = SendPass.run

    async def timed_pass(self: SendPass) -> PassReport:
        started = time.process_time()
        profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not wall
        if profiler is not None:
            profiler.enable()
        try:
            return await run_pass(self)
        finally:
            if profiler is not None and profile is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            cpu.append(time.process_time() - started)

    SendPass.run = timed_pass  # type: ignore[method-assign]  # what `run_campaign` runs
    try:
        outcome = run_campaign(engine, engine, campaign, composer, smtp, as_of=AS_OF)
    finally:
        SendPass.run = run_pass  # type: ignore[method-assign]
    return outcome.pass_report, outcome.seconds, cpu[0]


@contextlib.contextmanager
def _scratch_ledger(server_url: str) -> Iterator[str]:
    """A new, empty database on the `--ledger-url` server for this benchmark, dropped after.

    A ledger that already holds a run of the campaign would make this one skip its recipients
    (`ALREADY_SENT`) and send nothing; a fresh database also keeps repeated runs comparable.
    """
    url = sa.make_url(server_url)
    name = f"swmail_cpu_bound_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
        admin.dispose()


def _run_with_workers(
    source_url: str, ledger_url: str, port: int, connections: int, workers: int, run_key: str
) -> tuple[int, float]:
    """`swmail run` plus `workers` × `swmail worker`: deliveries sent and wall seconds."""
    env = {
        **os.environ,
        "SWMAIL_DATABASE_URL": source_url,
        "SWMAIL_DATABASE_LEDGER_URL": ledger_url,
        "SWMAIL_SMTP_HOST": "127.0.0.1",
        "SWMAIL_SMTP_PORT": str(port),
        "SWMAIL_SMTP_CONNECTIONS": str(connections),
    }
    ledger = make_engine(ledger_url)
    upgrade(ledger)  # the ledger tables, as `db init` makes them
    swmail = [sys.executable, str(REPO / "run_campaign.py")]
    run_args = ["run", "--campaign", "maintenance-notice", "--as-of", str(AS_OF)]
    started = time.perf_counter()
    coordinator = subprocess.Popen([*swmail, *run_args, "--run-key", run_key], cwd=REPO, env=env)
    run_id = f"maintenance-notice/{run_key}"
    while coordinator.poll() is None:  # workers join a frozen run: wait until `run` froze it
        with ledger.connect() as conn:
            if get_run(conn, run_id) is not None:
                break
        time.sleep(0.1)
    helpers = [
        subprocess.Popen([*swmail, "worker", "--run", run_id], cwd=REPO, env=env)
        for _ in range(workers)
    ]
    codes = [p.wait() for p in (coordinator, *helpers)]
    seconds = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"swmail exited with {codes}")
    with ledger.connect() as conn:
        run = get_run(conn, run_id)
        assert run is not None, f"no run {run_id} in the ledger"
        sent = stats(conn, run).counts.get(DeliveryStatus.SENT, 0)
    ledger.dispose()  # its database is dropped next
    return int(sent), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=12500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, alternating")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile of the send pass")
    parser.add_argument("--workers", type=int, default=0, help="extra `swmail worker` processes")
    parser.add_argument("--ledger-url", default="", help="server database for --workers")
    args = parser.parse_args()
    if args.workers and not _has_worker_command():
        print("--workers needs the `swmail worker` command, which this checkout does not have")
        return 2
    if args.workers and not args.ledger_url:
        print("--workers needs --ledger-url (PostgreSQL or MariaDB): workers share the ledger")
        return 2

    tools = postfix_tools()
    campaign, templates = shipped_campaign()
    work, engine = demo_database(args.customers, "swmail-cpu-bound-")
    folder = Path(tempfile.mkdtemp(prefix="swmail-cpu-bound-msg-"))
    message_file, size = average_message(
        Composer(campaign.id, "size", AS_OF, templates, MessageSettings()), engine, folder
    )

    rows: list[str] = []
    ratios: list[float] = []
    with postfix_sink(tools) as sink:
        smtp = SmtpSettings(host="127.0.0.1", port=sink.port, connections=args.connections)
        for n in range(args.repeat):
            key = f"cpu-{n}-{os.getpid()}"
            sink_before = cpu_seconds(sink.pid)
            if args.workers:
                with _scratch_ledger(args.ledger_url) as ledger_url:
                    count, seconds = _run_with_workers(
                        str(engine.url), ledger_url, sink.port, args.connections, args.workers, key
                    )
                rate, whole, client_cpu = count / seconds, count / seconds, float("nan")
            else:
                report, seconds, cpu = _run_in_process(engine, smtp, key, args.profile)
                count = report.attempted
                if report.sent != count:
                    print(f"run sent {report.sent} of {count}: {report.first_errors}")
                    return 1
                rate, whole, client_cpu = report.rate, count / seconds, cpu / count * 1e6
            sink_cpu = (cpu_seconds(sink.pid) - sink_before) / count * 1e6
            source = smtp_source(
                tools,
                sink.port,
                sessions=args.connections,
                messages=count,
                message_file=message_file,
            )
            ratios.append(rate / source.rate)
            source_cpu = source.cpu / count * 1e6
            rows.append(
                f"| run {n + 1} | {rate:,.0f} | {whole:,.0f} | {client_cpu:,.0f} | {sink_cpu:,.0f}"
                f" | {source.rate:,.0f} | {source_cpu:,.0f} | {ratios[-1]:.3f} |"
            )

    processes = 1 + args.workers
    print(
        f"{count:,} deliveries ({args.customers:,} customers), message {size:,} bytes,"
        f" {args.connections} connections/sessions, {processes} sending process(es)"
    )
    print(
        "| run | run send pass msg/s | whole run msg/s | client CPU µs/msg | smtp-sink CPU µs/msg"
        " | smtp-source -d msg/s | smtp-source CPU µs/msg | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(f"ratio run/smtp-source: {min(ratios):.3f}–{max(ratios):.3f} (target ≥ 0.25, 2 cores)")
    print(f"(work files in {work}; cpu count {os.cpu_count()}; load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
