"""What the send benchmarks share: a demo database and a discarding SMTP sink in its own process.

The sink runs in a separate process so that it does not share the client's event loop or core
accounting: its CPU can be read on its own (bench/send_cpu.py).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from jobs.config.campaign import Campaign, load_campaign  # noqa: E402
from jobs.ledger import upgrade  # noqa: E402
from jobs.messages.render import TemplateSet, load_template_set  # noqa: E402
from jobs.source.engine import make_engine  # noqa: E402
from jobs.source.importer import import_dir  # noqa: E402
from jobs.source.models import init_source_schema  # noqa: E402
from tools.demo_data import generate  # noqa: E402
from tools.postfix import PostfixTools, SinkProcess  # noqa: E402

__all__ = [
    "REPO",
    "Sink",
    "SourceRun",
    "cpu_seconds",
    "delay_proxy",
    "demo_database",
    "discarding_sink",
    "postfix_sink",
    "shipped_campaign",
    "smtp_source",
]

_SINK = """
import socket, sys
from aiosmtpd.controller import Controller
class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK"
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
c = Controller(Discard(), hostname="127.0.0.1", port=port)
c.start()
print(port, flush=True)
sys.stdin.read()
c.stop()
"""


def demo_database(customers: int, prefix: str) -> tuple[Path, sa.Engine]:
    """A new folder with a generated demo data set imported into SQLite, ledger tables ready."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    generate(work / "data", customers=customers)
    engine = make_engine(f"sqlite:///{work / 'bench.sqlite3'}")
    init_source_schema(engine)
    import_dir(engine, work / "data")
    upgrade(engine)
    return work, engine


def shipped_campaign() -> tuple[Campaign, TemplateSet]:
    """The maintenance notice as shipped, with its compiled templates."""
    campaign = load_campaign(REPO / "config/campaigns/maintenance-notice.toml")
    return campaign, load_template_set(REPO / "templates", campaign.template, campaign.folder)


@dataclass(frozen=True)
class Sink:
    port: int
    pid: int


@contextmanager
def discarding_sink() -> Iterator[Sink]:
    """An aiosmtpd server on 127.0.0.1 that accepts and drops every message; stops on exit."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield Sink(port=int(process.stdout.readline()), pid=process.pid)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), e.g. a sink's or a proxy's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def postfix_sink(tools: PostfixTools) -> Iterator[Sink]:
    """Postfix's smtp-sink on 127.0.0.1 (PIPELINING offered, everything discarded)."""
    with SinkProcess(tools, backlog=256) as sink:
        assert sink.process is not None
        yield Sink(port=sink.port, pid=sink.process.pid)


@contextmanager
def delay_proxy(target_port: int, delay: float) -> Iterator[Sink]:
    """bench/delay_proxy.py in front of `target_port`: `delay` seconds each way."""
    script = Path(__file__).resolve().parent / "delay_proxy.py"
    process = subprocess.Popen(
        [sys.executable, str(script), str(target_port), "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield Sink(port=int(process.stdout.readline()), pid=process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class SourceRun:
    """One `smtp-source` run: wall seconds and its own CPU seconds (user + system)."""

    messages: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def smtp_source(
    tools: PostfixTools, port: int, *, sessions: int, messages: int, message_file: Path
) -> SourceRun:
    """`smtp-source -d` sending `messages` copies of the file over `sessions` sessions."""
    command = tools.command(
        "smtp-source",
        "-d",
        "-s",
        str(sessions),
        "-m",
        str(messages),
        "-F",
        str(message_file),
        "-f",
        "info@smileworks.example.jp",
        "-t",
        "bench@example.jp",
        f"127.0.0.1:{port}",
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=tools.env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return SourceRun(messages, seconds, cpu)
