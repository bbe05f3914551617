"""Fixtures for the safety tests (issue 6, "Safe defaults and hardening"): the CLI in-process.

`Cli` runs `swmail` through click's CliRunner with an operator's environment (SWMAIL_ settings
only from the test, the repo's config, campaigns and templates) in a working folder of its own,
so that every file the command writes lands under the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from run_campaign import cli
from tests.conftest import REPO

# The end-to-end fixtures of tests/run (real SMTP servers, sites) are used here too.
from tests.run.conftest import Site, make_site, smtp_server  # noqa: F401
from tests.smtpd import SmtpServer

CAMPAIGN = "maintenance-notice"
AS_OF = "2026-12-01"
RUN_ID = f"{CAMPAIGN}/{AS_OF}"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """`swmail …` in-process with these SWMAIL_ settings, working in `workdir`."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, **settings: str) -> Result:
        env = {
            "SWMAIL_CONFIG": str(REPO / "config" / "settings.toml"),
            "SWMAIL_PATHS_TEMPLATES": str(REPO / "templates"),
            "SWMAIL_PATHS_CAMPAIGNS": str(REPO / "config" / "campaigns"),
            "SWMAIL_DATABASE_LEDGER_URL": "",
            **self.env,
            **settings,
        }
        cwd = Path.cwd()
        os.chdir(self.workdir)
        try:
            result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
        finally:
            os.chdir(cwd)
        return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def swmail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key in [k for k in os.environ if k.startswith("SWMAIL_")]:
        monkeypatch.delenv(key)
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Cli(workdir)


def run_count(url: str) -> int:
    """How many runs the ledger at `url` holds (0 when it has no ledger tables)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        if not sa.inspect(engine).has_table("swmail_runs"):
            return 0
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM swmail_runs")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under the umask given as its parameter (022 or 000)."""
    value = int(request.param)
    previous = os.umask(value)
    try:
        yield value
    finally:
        os.umask(previous)


@pytest.fixture
def sent_sample_run(
    make_site: Callable[..., Site],  # noqa: F811  # the fixture imported above
    smtp_server: Callable[..., SmtpServer],  # noqa: F811
    sqlite_url: str,
    sample_data: Path,
) -> str:
    """The sample campaign run to the end into a local server; the SQLite URL of its ledger."""
    site = make_site(sqlite_url)
    site.prepare(sample_data)
    assert site.run(smtp_server()).exit_code == 0
    return sqlite_url
