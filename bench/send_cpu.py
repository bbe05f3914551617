"""Benchmark: CPU per message of the send path, as a whole and stage by stage.

    .venv/bin/python bench/send_cpu.py [--customers 3000] [--connections 4] [--passes 2]

Messages per second move with whatever else the machine is doing; the CPU a message costs moves
far less, and it is what decides the rate a 2-core machine can reach (the client's one core, the
relay or sink on the other). This prints:

- per stage, on the same deliveries (best of 5 runs, µs per message): building the template
  context, rendering (subject, text, HTML), MIME encoding, the whole `Composer.compose`, and
  the wire form the pool writes (`crlf` for SIZE, then dot-stuffing);
- per pass of `run` into a discarding aiosmtpd sink in another process: messages/s, the client
  process's CPU per message (event loop and ledger thread together), and the sink's.

Each pass uses a fresh run key, so every pass sends every delivery.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from benchlib import (  # puts the project on sys.path
    demo_database,
    discarding_sink,
    shipped_campaign,
)

from jobs.config.settings import MessageSettings, SmtpSettings
from jobs.delivery.coordinator import run_campaign
from jobs.delivery.sender import PassReport, SendPass
from jobs.messages.compose import TOKYO, Composer
from jobs.messages.mime import build_message
from jobs.messages.render import build_context
from jobs.resolution.pipeline import resolve_campaign
from jobs.smtp.envelope import crlf, dot_stuffed
from resolver.model import Delivery

AS_OF = date(2026, 12, 1)


def per_message(fn: Callable[[], object], count: int) -> float:
    """Best of 5 runs of `fn` (which handles `count` messages), in µs per message."""
    return min(timeit.repeat(fn, number=1, repeat=5)) / count * 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU of another process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stages(composer: Composer, deliveries: list[Delivery]) -> None:
    count = len(deliveries)
    templates = composer.templates
    date_ = datetime.now(TOKYO)

    def contexts() -> list[dict[str, Any]]:
        return [
            build_context(d, composer.campaign_id, composer.run_key, composer.as_of)
            for d in deliveries
        ]

    ctxs = contexts()
    rendered = [templates.render(c) for c in ctxs]
    message = composer.message

    def build() -> None:
        for r, d in zip(rendered, deliveries, strict=True):
            build_message(
                r,
                to_name=d.name,
                to_addr=d.email,
                from_=message.from_,
                reply_to=message.reply_to,
                message_id=composer.message_id(d.key),
                date=date_,
                charset=message.charset,
                campaign_id=composer.campaign_id,
            )

    datas = [composer.compose(d, date_).data for d in deliveries]

    def wire() -> None:
        # as SmtpPool._dialogue does it: CRLF form once, its length for SIZE, then dot-stuffing
        for data in datas:
            body = crlf(data)
            len(body)
            dot_stuffed(body)

    def render() -> None:
        for c in ctxs:
            templates.render(c)

    def compose() -> None:
        for d in deliveries:
            composer.compose(d)

    print(f"average message size:  {sum(map(len, datas)) / count:8,.0f} bytes")
    for name, fn in (
        ("context", contexts),
        ("render", render),
        ("MIME build", build),
        ("compose (all above)", compose),
        ("wire form (SIZE+DATA)", wire),
    ):
        print(f"{name + ':':22} {per_message(fn, count):8.1f} µs/message")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()

    work, engine = demo_database(args.customers, "swmail-cpu-")

    campaign, templates = shipped_campaign()
    message = MessageSettings()
    with resolve_campaign(engine, campaign, AS_OF, progress=False) as resolved:
        deliveries = list(resolved.deliveries)
    stages(Composer(campaign.id, "stages", AS_OF, templates, message), deliveries[:1000])

    # The pass alone, without the first run's resolution: CPU is read around `SendPass.run`.
    cpu: list[float] = []
    run_pass = SendPass.run

    async def timed_pass(self: SendPass) -> PassReport:
        started = time.process_time()
        try:
            return await run_pass(self)
        finally:
            cpu.append(time.process_time() - started)

    SendPass.run = timed_pass  # type: ignore[method-assign]  # what `run_campaign` runs

    with discarding_sink() as sink:
        smtp = SmtpSettings(host="127.0.0.1", port=sink.port, connections=args.connections)
        for n in range(args.passes):
            composer = Composer(campaign.id, f"cpu-{n}", AS_OF, templates, message)
            cpu.clear()
            sink_before = cpu_seconds(sink.pid)
            report = run_campaign(engine, engine, campaign, composer, smtp, as_of=AS_OF).pass_report
            sink_cpu = cpu_seconds(sink.pid) - sink_before
            sent = max(report.attempted, 1)
            print(
                f"pass {n + 1}: {report.rate:6,.0f} messages/s over {report.attempted:,};"
                f" client CPU {cpu[0] / sent * 1e6:6.0f} µs/message,"
                f" sink CPU {sink_cpu / sent * 1e6:6.0f} µs/message"
            )
    print(f"(work files in {work}; cpu count {os.cpu_count()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
