"""What the send benchmarks share: a demo database and a discarding SMTP sink in its own process.

The sink runs in a separate process so that it does not share the client's event loop or core
accounting: its CPU can be read on its own (bench/send_cpu.py).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
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

__all__ = ["REPO", "Sink", "demo_database", "discarding_sink", "shipped_campaign"]

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
