"""End-to-end fixtures for `run`: real databases, real aiosmtpd servers, the real CLI.

A `Site` is one installation under test: a source database (and the ledger in it, or in
`ledger_url`), a working folder, and the settings an operator would give through the environment.
It drives the same code two ways: in-process (`Site.run` calls
`jobs.delivery.coordinator.run_campaign`, so a test can read the `RunOutcome`) and as the
operator does (`Site.cli`/`Site.spawn` start `run_campaign.py` in a subprocess, so exit codes
and kill -9 are the real ones).

`ScriptedHandler` extends the shared `RecordingHandler` with the two things these tests need:
DATA replies scripted per recipient, and every RCPT address in the order the server saw it.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session

from jobs.config.campaign import Campaign, load_campaign, resolve_campaign_path
from jobs.config.settings import Settings, load_settings
from jobs.delivery.coordinator import RunOutcome, run_campaign
from jobs.ledger import AuditExportRow, get_run, iter_audit, load_suppression_keys, stats, upgrade
from jobs.ledger.models import DeliveryRow, RunRow
from jobs.ledger.values import DeliveryStatus, RunStats
from jobs.messages.compose import Composer
from jobs.messages.render import load_template_set
from jobs.source.engine import make_engine
from jobs.source.importer import import_dir
from jobs.source.models import init_source_schema
from resolver.model import Decision
from tests.smtpd import Received, RecordingHandler, Reply, Script, SmtpServer
from tools.people import write_people

__all__ = [
    "AS_OF",
    "CAMPAIGN",
    "RUN_ID",
    "ScriptedHandler",
    "Site",
    "all_disconnected",
    "closed_port",
    "numbered_addresses",
    "read_csv",
    "received_per_address",
    "wait_until",
    "write_people",
]

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = "maintenance-notice"
AS_OF = date(2026, 12, 1)
RUN_ID = f"{CAMPAIGN}/{AS_OF.isoformat()}"
CLI_TIMEOUT = 120.0  # seconds: a hung subprocess fails the test instead of the whole suite

# Small backoffs and a few attempts keep every retry path fast; the pool is the default size.
FAST_SMTP: Mapping[str, str] = {
    "connections": "4",
    "max_attempts": "3",
    "backoff_initial_seconds": "0.01",
    "backoff_max_seconds": "0.02",
    "timeout_seconds": "5",
    "rate_per_second": "0",
}


@dataclass
class ScriptedHandler(RecordingHandler):
    """A `RecordingHandler` whose DATA reply can depend on the (single) recipient.

    `data_for` maps a recipient address to a script used instead of `data` for its messages.
    `rcpts` lists every RCPT address in arrival order, refused ones included, so a test can count
    how often the client tried an address that never reached DATA.
    """

    data_for: dict[str, Script] = field(default_factory=dict)
    rcpts: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.rcpts.append(address)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    def _data_reply(self, received: Received) -> Reply | None:
        recipient = received.rcpt_tos[0] if received.rcpt_tos else ""
        if recipient in self.data_for:
            return self._next(f"DATA {recipient}", self.data_for[recipient])
        return super()._data_reply(received)


def received_per_address(bodies: Iterable[Received]) -> Counter[str]:
    """How many DATA bodies reached the server for each recipient (accepted or not)."""
    return Counter(address for body in bodies for address in body.rcpt_tos)


def closed_port() -> int:
    """A loopback port where nothing listens: a relay that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def all_disconnected(server: SmtpServer) -> bool:
    """Every session the server accepted has lost its connection: no body is still arriving.

    aiosmtpd cancels a session's handler when its connection goes, so after this nothing more
    from a killed client can be recorded.
    """
    return all(session.transport is None for session in server._sessions)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 10 ms; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV the program wrote (UTF-8 with BOM, SPEC §5) as dicts by column name."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def numbered_addresses(n: int) -> list[str]:
    return [f"person{i:04d}@example.jp" for i in range(1, n + 1)]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _clean_environment() -> dict[str, str]:
    """The caller's environment without any SWMAIL_ setting that could leak into a test."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SWMAIL_")}


@dataclass
class Site:
    """One installation under test: databases, a working folder and environment settings."""

    url: str
    workdir: Path
    ledger_url: str = ""
    _spawned: list[subprocess.Popen[str]] = field(default_factory=list)

    # --- settings -------------------------------------------------------------------------------

    def env(self, server: SmtpServer | None = None, **smtp: object) -> dict[str, str]:
        """SWMAIL_ variables for this site; `smtp` keys override FAST_SMTP (SPEC §8 names)."""
        values = {
            "SWMAIL_CONFIG": str(REPO / "config" / "settings.toml"),
            "SWMAIL_DATABASE_URL": self.url,
            "SWMAIL_DATABASE_LEDGER_URL": self.ledger_url,
            "SWMAIL_PATHS_TEMPLATES": str(REPO / "templates"),
            "SWMAIL_PATHS_CAMPAIGNS": str(REPO / "config" / "campaigns"),
        }
        merged: dict[str, object] = {**FAST_SMTP, **smtp}
        if server is not None:
            merged.setdefault("host", server.host)
            merged.setdefault("port", server.port)
        values.update({f"SWMAIL_SMTP_{k.upper()}": str(v) for k, v in merged.items()})
        return values

    def settings(self, server: SmtpServer | None = None, **smtp: object) -> Settings:
        return load_settings(None, env=self.env(server, **smtp))

    @property
    def effective_ledger_url(self) -> str:
        return self.ledger_url or self.url

    # --- in-process ------------------------------------------------------------------------------

    def prepare(self, data: Path) -> None:
        """`db init` + `db import DATA`, in-process (the CLI runs the same two functions)."""
        source = make_engine(self.url)
        ledger = make_engine(self.effective_ledger_url)
        try:
            init_source_schema(source)
            upgrade(ledger)
            import_dir(source, data)
        finally:
            source.dispose()
            ledger.dispose()

    def composer(self, settings: Settings, run_key: str | None = None) -> tuple[Campaign, Composer]:
        """The campaign and its Composer, loaded as the CLI loads them."""
        campaign = load_campaign(resolve_campaign_path(CAMPAIGN, Path(settings.paths.campaigns)))
        templates = load_template_set(
            Path(settings.paths.templates), campaign.template, campaign.folder
        )
        key = run_key or AS_OF.isoformat()
        return campaign, Composer(campaign.id, key, AS_OF, templates, settings.message)

    def run(self, server: SmtpServer, *, run_key: str | None = None, **smtp: object) -> RunOutcome:
        """One `run` of the campaign as of AS_OF, in this process."""
        settings = self.settings(server, **smtp)
        campaign, composer = self.composer(settings, run_key)
        source = make_engine(self.url)
        ledger = make_engine(self.effective_ledger_url)
        try:
            return run_campaign(
                source, ledger, campaign, composer, settings.smtp, as_of=AS_OF, progress=False
            )
        finally:
            source.dispose()
            ledger.dispose()

    def _ledger(self) -> sa.Engine:
        return make_engine(self.effective_ledger_url)

    def audit(self, run_id: str = RUN_ID) -> list[AuditExportRow]:
        """The run's audit rows with delivery state, straight from the ledger."""
        engine = self._ledger()
        try:
            with engine.connect() as conn:
                run = get_run(conn, run_id)
                assert run is not None, f"no run {run_id} in the ledger"
                return list(iter_audit(conn, run))
        finally:
            engine.dispose()

    def deliveries(self, run_id: str = RUN_ID) -> dict[str, AuditExportRow]:
        """The `send` audit row of each delivery, by delivery address."""
        rows = {}
        for row in self.audit(run_id):
            if row.decision is Decision.SEND:
                assert row.delivery_email is not None
                rows[row.delivery_email] = row
        return rows

    def stats(self, run_id: str = RUN_ID) -> RunStats:
        engine = self._ledger()
        try:
            with engine.connect() as conn:
                run = get_run(conn, run_id)
                assert run is not None, f"no run {run_id} in the ledger"
                return stats(conn, run)
        finally:
            engine.dispose()

    def statuses(self, run_id: str = RUN_ID) -> dict[str, DeliveryStatus]:
        """Each delivery's raw ledger status by address (`sending` included, unlike the audit)."""
        engine = self._ledger()
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(DeliveryRow.email, DeliveryRow.status)
                    .join(RunRow, RunRow.pk == DeliveryRow.run_pk)
                    .where(RunRow.run_id == run_id)
                ).all()
            return {email: status for email, status in rows}
        finally:
            engine.dispose()

    def suppressions(self) -> set[str]:
        """The ledger's own suppression list (hard bounces, SPEC §7)."""
        engine = self._ledger()
        try:
            with engine.connect() as conn:
                return load_suppression_keys(conn)
        finally:
            engine.dispose()

    # --- the CLI in a subprocess -----------------------------------------------------------------

    def _command(self, args: Iterable[str]) -> list[str]:
        return [sys.executable, str(REPO / "run_campaign.py"), *args]

    def cli(
        self,
        *args: str,
        server: SmtpServer | None = None,
        timeout: float = CLI_TIMEOUT,
        **smtp: object,
    ) -> subprocess.CompletedProcess[str]:
        """`swmail ARGS` as an operator runs it; returns exit code and output."""
        return subprocess.run(
            self._command(args),
            cwd=self.workdir,
            env={**_clean_environment(), **self.env(server, **smtp)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def spawn(
        self, *args: str, server: SmtpServer | None = None, **smtp: object
    ) -> subprocess.Popen[str]:
        """Start `swmail ARGS` in the background; killed at the end of the test if still alive."""
        process = subprocess.Popen(
            self._command(args),
            cwd=self.workdir,
            env={**_clean_environment(), **self.env(server, **smtp)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # a shell's background job (`make test &`) ignores SIGINT, and a child inherits
            # that: give it back the default, so Ctrl-C tests see what a terminal user sees
            preexec_fn=_default_sigint,
        )
        self._spawned.append(process)
        return process

    def run_args(self, *extra: str) -> tuple[str, ...]:
        return ("run", "--campaign", CAMPAIGN, "--as-of", AS_OF.isoformat(), *extra)

    def close(self) -> None:
        for process in self._spawned:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.communicate(timeout=CLI_TIMEOUT)


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """`make_site(url, ledger_url="")`: a Site working in its own folder under tmp_path."""
    sites: list[Site] = []

    def build(url: str, ledger_url: str = "") -> Site:
        workdir = tmp_path / f"site{len(sites)}"
        workdir.mkdir()
        site = Site(url=url, workdir=workdir, ledger_url=ledger_url)
        sites.append(site)
        return site

    yield build
    for site in sites:
        site.close()


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """Start servers with `smtp_server(handler)`; all stop after the test."""
    servers: list[SmtpServer] = []

    def start(handler: RecordingHandler | None = None, **kwargs: Any) -> SmtpServer:
        server = SmtpServer(handler if handler is not None else ScriptedHandler(), **kwargs)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()
