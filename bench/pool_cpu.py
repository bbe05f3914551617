"""Benchmark: CPU per message of the SMTP pool and the event loop alone (issue 8).

    .venv/bin/python bench/pool_cpu.py [--messages 20000] [--connections 4] [--repeat 3]
                                       [--size 12224]

`bench/send_cpu_bound.py` measures the whole `run`; here the envelopes are built before the
clock starts, so what is timed is only `SmtpPool.send` × N with `concurrency` sends outstanding
into Postfix's `smtp-sink` on loopback: the pool, the pipelined transactions, the reply parser,
the event loop and the kernel's socket work. Prints the client's CPU µs per message (user+sys,
this process) of each repeat. (uvloop was measured here once, with the wire's transport check
loosened for the measurement: 46–47 against 53–58 µs, ≈ 2 % of a whole message; not kept, so
there is no option for it: `jobs.smtp.wire` accepts asyncio's transports only.)
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

from benchlib import postfix_sink  # puts the project on sys.path

from jobs.config.settings import SmtpSettings
from jobs.smtp.envelope import Envelope
from jobs.smtp.pool import SmtpPool
from tools.postfix import postfix_tools


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _envelopes(count: int, size: int) -> list[Envelope]:
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n"
    body = b"Subject: x\r\nMIME-Version: 1.0\r\n\r\n" + line * max(1, size // len(line))
    return [
        Envelope(
            sender=f"bounce+{n}@mail.example.co.jp",
            recipients=(f"customer{n}@example.co.jp",),
            data=body,
            message_id=f"<{n}@example>",
            key=str(n),
            crlf_form=True,
        )
        for n in range(count)
    ]


async def _send_all(settings: SmtpSettings, envelopes: list[Envelope]) -> tuple[float, float, int]:
    """Seconds and CPU seconds to send `envelopes`, and how many were accepted."""
    async with SmtpPool(settings, None, local_hostname="bench.example") as pool:
        feed = iter(envelopes)
        sent = 0

        async def worker() -> None:
            nonlocal sent
            for envelope in feed:
                result = await pool.send(envelope)
                sent += result.outcome.name == "SENT"

        started, cpu = time.perf_counter(), _cpu()
        await asyncio.gather(*(worker() for _ in range(pool.concurrency)))
        return time.perf_counter() - started, _cpu() - cpu, sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=12224)
    args = parser.parse_args()
    envelopes = _envelopes(args.messages, args.size)
    with postfix_sink(postfix_tools()) as sink:
        settings = SmtpSettings(host="127.0.0.1", port=sink.port, connections=args.connections)
        print("| run | msg/s | client CPU µs/msg |\n|---|---:|---:|")
        for n in range(args.repeat):
            seconds, cpu, sent = asyncio.run(_send_all(settings, envelopes))
            if sent != len(envelopes):
                print(f"sent {sent} of {len(envelopes)}")
                return 1
            print(f"| {n + 1} | {sent / seconds:,.0f} | {cpu / sent * 1e6:,.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
