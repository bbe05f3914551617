"""Benchmark: the whole `run` against Postfix's smtp-source through a 20 ms round trip.

    .venv/bin/python bench/send_latency.py [--customers 900] [--connections 4] [--delay 0.010]
                                           [--repeat 1]

A remote relay makes round trips, not CPU, the limit. Both clients send through the same
delaying proxy (bench/delay_proxy.py, `delay` each way) into the same Postfix `smtp-sink`:

- baseline: `smtp-source -d` (no PIPELINING: MAIL, RCPT, DATA and the body each wait for
  their reply), the same number of sessions as connections, the same number of messages, each a
  copy of a real message of the campaign of average size;
- product: `run` of a generated demo data set (about 1,500 deliveries for 900 customers):
  resolve and freeze, then claim → compose → send with PIPELINING → ledger (SQLite).

Prints messages/s of each and the ratio run/smtp-source (target ≥ 1.6, goal 3: about one round
trip per message instead of four). The first figure is the send pass of `run`; the whole `run`
(resolution and freezing included) is shown beside it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from benchlib import (  # puts the project on sys.path
    delay_proxy,
    demo_database,
    postfix_sink,
    shipped_campaign,
    smtp_source,
)

from jobs.config.settings import MessageSettings, SmtpSettings
from jobs.delivery.coordinator import run_campaign
from jobs.messages.compose import Composer
from jobs.resolution.pipeline import resolve_campaign
from tools.postfix import postfix_tools

AS_OF = date(2026, 12, 1)


def average_message(composer: Composer, engine: sa.Engine, folder: Path) -> tuple[Path, int]:
    """A file with the campaign message closest to the average size, for `smtp-source -F`."""
    campaign, _ = shipped_campaign()
    with resolve_campaign(engine, campaign, AS_OF, progress=False) as resolved:
        deliveries = list(itertools.islice(resolved.deliveries, 500))
    datas = [composer.compose(d).data for d in deliveries]
    mean = sum(map(len, datas)) / len(datas)
    data = min(datas, key=lambda d: abs(len(d) - mean))
    path = folder / "message.txt"
    path.write_bytes(data.replace(b"\r\n", b"\n"))  # smtp-source appends CRLF to each line
    return path, len(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=900)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.010, help="seconds each way")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, alternating")
    args = parser.parse_args()

    tools = postfix_tools()
    campaign, templates = shipped_campaign()
    message = MessageSettings()
    work, engine = demo_database(args.customers, "swmail-latency-")
    folder = Path(tempfile.mkdtemp(prefix="swmail-latency-msg-"))
    message_file, size = average_message(
        Composer(campaign.id, "size", AS_OF, templates, message), engine, folder
    )

    rows: list[tuple[str, float, float, float]] = []
    with postfix_sink(tools) as sink, delay_proxy(sink.port, args.delay) as proxy:
        smtp = SmtpSettings(host="127.0.0.1", port=proxy.port, connections=args.connections)
        for n in range(args.repeat):
            composer = Composer(campaign.id, f"latency-{n}", AS_OF, templates, message)
            outcome = run_campaign(engine, engine, campaign, composer, smtp, as_of=AS_OF)
            report = outcome.pass_report
            count = report.attempted
            if report.sent != count:
                print(f"run sent {report.sent} of {count}: {report.first_errors}")
                return 1
            baseline = smtp_source(
                tools,
                proxy.port,
                sessions=args.connections,
                messages=count,
                message_file=message_file,
            ).rate
            rows.append((f"run {n + 1}", report.rate, count / outcome.seconds, baseline))

    print(
        f"{count:,} deliveries ({args.customers:,} customers), message {size:,} bytes,"
        f" {args.connections} connections/sessions, round trip {2 * args.delay * 1000:.0f} ms"
    )
    print("| run | run send pass msg/s | whole run msg/s | smtp-source -d msg/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, whole, baseline in rows:
        print(f"| {name} | {rate:,.0f} | {whole:,.0f} | {baseline:,.0f} | {rate / baseline:.2f} |")
    ratios = [rate / baseline for _, rate, _, baseline in rows]
    print(f"ratio run/smtp-source: {min(ratios):.2f}–{max(ratios):.2f} (target ≥ 1.6, goal 3)")
    print(f"(work files in {work}; cpu count {os.cpu_count()}; load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
