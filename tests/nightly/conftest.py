"""Fixtures for `nightly`, approval, ALREADY_SENT, reports and alerts: the real CLI end to end.

A `Night` is one installation: a database with a small data set, a folder of campaign files the
test writes, a private copy of the templates (so that a test may edit them), a real aiosmtpd
server, and `swmail(...)` running `run_campaign.py` in a subprocess with the given clock.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.run.conftest import (
    REPO,
    ScriptedHandler,
    Site,
    _clean_environment,
    make_site,
    numbered_addresses,
    received_per_address,
    smtp_server,
    write_people,
)
from tests.smtpd import SmtpServer

# the fixtures of the `run` tests, shared: a site per test and real SMTP servers
__all__ = ["Night", "lines_of", "make_night", "make_site", "smtp_server"]


@dataclass
class Night:
    site: Site
    server: SmtpServer
    handler: ScriptedHandler
    campaigns: Path
    templates: Path
    data: Path

    def campaign(self, campaign_id: str, **keys: object) -> Path:
        """Write `<campaigns>/<id>.toml` with the shared template and the given keys."""
        lines = [f'id = "{campaign_id}"', 'template = "maintenance-notice"']
        for key, value in keys.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, str) and not value.startswith("["):
                lines.append(f'{key} = "{value}"')
            else:
                lines.append(f"{key} = {value}")
        path = self.campaigns / f"{campaign_id}.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **_clean_environment(),
            **self.site.env(self.server),
            "SWMAIL_PATHS_TEMPLATES": str(self.templates),
            "SWMAIL_PATHS_CAMPAIGNS": str(self.campaigns),
        }
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(REPO / "run_campaign.py"), *args]

    def spawn(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        """Start `swmail ARGS` in the background; the site kills it at the end if still alive."""
        process = subprocess.Popen(
            self.command(*args),
            cwd=self.site.workdir,
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.site._spawned.append(process)
        return process

    def swmail(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.site.workdir,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def nightly(self, now: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.swmail("nightly", "--now", now, *args, **extra)

    def received(self) -> Counter[str]:
        """DATA bodies the server accepted, per recipient address."""
        return received_per_address(self.handler.messages)

    def reimport(self, emails: list[str]) -> None:
        shutil.rmtree(self.data)
        write_people(self.data, emails)
        assert self.swmail("db", "import", str(self.data)).returncode == 0


def lines_of(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """`nightly` stdout as {campaign: (state, detail)}; fails on any line it cannot read."""
    states = ("no schedule", "not due", "sent", "due", "expired", "refused", "broken", "locked")
    out: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("REDIRECTED: "):
            continue  # §10: the redirect notice heads the summary; it is no campaign's line
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        state = next((s for s in states if rest.startswith(s)), None)
        assert state is not None, f"unreadable summary line {line!r}"
        out[name] = (state, rest[len(state) :].strip())
    return out


@pytest.fixture
def make_night(
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    tmp_path: Path,
) -> Iterator[Callable[..., Night]]:
    """`make_night(url, people=3)`: a prepared installation with `people` one-address customers."""

    def build(url: str, people: int = 3) -> Night:
        site = make_site(url)
        handler = ScriptedHandler()
        server = smtp_server(handler)
        root = tmp_path / f"night-{site.workdir.name}"
        campaigns = root / "campaigns"
        campaigns.mkdir(parents=True)
        templates = root / "templates"
        shutil.copytree(REPO / "templates", templates)
        data = write_people(root / "data", numbered_addresses(people))
        site.prepare(data)
        return Night(site, server, handler, campaigns, templates, data)

    yield build
