"""Benchmark: the whole send pipeline against the naive path, measured in the same run.

    .venv/bin/python bench/send_pipeline.py [--customers 3000] [--connections 4]

Both paths send the same deliveries of a generated demo data set into the same discarding
aiosmtpd sink (a separate process, so the sink does not share the client's event loop):

- baseline: an `EmailMessage` per recipient, sent with aiosmtplib's `send_message` over one
  persistent connection, nothing recorded (what a first script would do);
- product: `run` (claim → render → MIME → send through the pool → ledger commit per delivery).

Prints messages/s of each and their ratio. A ratio, not an absolute figure, is what can be
compared across machines and runs; the absolute numbers move with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage

import aiosmtplib
from benchlib import (  # puts the project on sys.path
    demo_database,
    discarding_sink,
    shipped_campaign,
)

from jobs.config.settings import MessageSettings, SmtpSettings
from jobs.delivery.coordinator import run_campaign
from jobs.messages.compose import TOKYO, Composer
from jobs.messages.render import build_context
from jobs.resolution.pipeline import resolve_campaign
from resolver.model import Delivery

AS_OF = date(2026, 12, 1)


def naive_message(composer: Composer, d: Delivery, message: MessageSettings) -> EmailMessage:
    rendered = composer.templates.render(
        build_context(d, composer.campaign_id, composer.run_key, composer.as_of)
    )
    m = EmailMessage()
    m["From"] = message.from_
    m["Reply-To"] = message.reply_to
    m["To"] = Address(d.name, addr_spec=d.email)
    m["Subject"] = rendered.subject
    m["Date"] = datetime.now(TOKYO)
    m["Message-ID"] = composer.message_id(d.key)
    m.set_content(rendered.text)
    if rendered.html is not None:
        m.add_alternative(rendered.html, subtype="html")
    return m


async def baseline(port: int, composer: Composer, deliveries: list[Delivery]) -> float:
    started = time.perf_counter()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
        for d in deliveries:
            await client.send_message(naive_message(composer, d, composer.message))
    return len(deliveries) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--baseline-messages", type=int, default=1500)
    args = parser.parse_args()

    work, engine = demo_database(args.customers, "swmail-bench-")

    campaign, templates = shipped_campaign()
    message = MessageSettings()
    composer = Composer(campaign.id, "bench", AS_OF, templates, message)

    with discarding_sink() as sink:
        with resolve_campaign(engine, campaign, AS_OF, progress=False) as resolved:
            deliveries = list(resolved.deliveries)
        sample = deliveries[: args.baseline_messages]
        naive_rate = asyncio.run(baseline(sink.port, composer, sample))

        smtp = SmtpSettings(host="127.0.0.1", port=sink.port, connections=args.connections)
        outcome = run_campaign(engine, engine, campaign, composer, smtp, as_of=AS_OF)
        report = outcome.pass_report

    print(f"deliveries:            {len(deliveries):,} ({args.customers:,} customers)")
    print(f"baseline (naive path): {naive_rate:8,.0f} messages/s over {len(sample):,} messages")
    print(
        f"pipeline (run):        {report.rate:8,.0f} messages/s over {report.attempted:,}"
        f" messages, {args.connections} connections, ledger on SQLite"
    )
    print(f"ratio pipeline/baseline: {report.rate / naive_rate:.2f}")
    print(f"(work files in {work}; cpu count {os.cpu_count()})")
    return 0 if report.sent == len(deliveries) else 1


if __name__ == "__main__":
    sys.exit(main())
