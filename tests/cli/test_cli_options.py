"""Click parameter types (issue 6 item 2): bad options are exit 2 and a message, before any work.

One rule for run keys (`jobs.config.runs.name_problem`) behind `--run-key` and `--run RUN_ID` of
every command; `--as-of` is a calendar date; `--campaign` is loaded and checked as it is parsed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from run_campaign import cli
from tests.conftest import REPO

CAMPAIGN = "maintenance-notice"


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repo's config and templates; the database a SQLite file that options never reach."""
    monkeypatch.chdir(REPO)
    for name in ("SWMAIL_CONFIG", "SWMAIL_DATABASE_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    database = tmp_path / "never.sqlite3"
    monkeypatch.setenv("SWMAIL_DATABASE_URL", f"sqlite:///{database}")
    return database


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def usage_error(*args: str, option: str) -> str:
    code, err = invoke(*args)
    assert code == 2, err
    assert f"Invalid value for '{option}'" in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "command",
    [
        ("dry-run", "--campaign", CAMPAIGN, "--out", "x"),
        ("preview", "--campaign", CAMPAIGN, "--email", "a@example.jp"),
        ("run", "--campaign", CAMPAIGN),
    ],
)
@pytest.mark.parametrize(
    ("key", "says"),
    [("2026/12", "must not contain '/'"), ("a b", "must not contain spaces"), ("", "empty")],
)
def test_every_run_key_option_has_the_same_rule(
    command: tuple[str, ...], key: str, says: str, project: Path
) -> None:
    err = usage_error(*command, "--run-key", key, option="--run-key")
    assert says in err
    assert not project.exists()  # refused before any database was opened


@pytest.mark.parametrize("command", [("status",), ("audit", "export", "--out", "audit.csv")])
@pytest.mark.parametrize(
    ("run_id", "says"),
    [
        ("maintenance-notice", "must be <campaign_id>/<run_key>"),
        ("maintenance-notice/a b", "run key 'a b' must not contain spaces"),
        ("maintenance-notice/2026/12", "run key '2026/12' must not contain '/'"),
        ("/2026-12-01", "campaign id '' must not be empty"),
    ],
)
def test_every_run_id_option_has_the_same_rule(
    command: tuple[str, ...], run_id: str, says: str, project: Path
) -> None:
    err = usage_error(*command, "--run", run_id, option="--run")
    assert says in err
    assert not project.exists()


@pytest.mark.parametrize("value", ["2026-13-01", "20261201", "2026-1-1", "tomorrow"])
def test_as_of_is_a_calendar_date(value: str) -> None:
    err = usage_error("resolve", "--campaign", CAMPAIGN, "--as-of", value, option="--as-of")
    assert f"{value!r} is not a date (YYYY-MM-DD)" in err


def test_an_unknown_campaign_lists_the_known_ones() -> None:
    err = usage_error("resolve", "--campaign", "no-such", option="--campaign")
    assert "no-such" in err and CAMPAIGN in err


def test_a_broken_campaign_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('id = "broken"\ntemplate = "x"\nexpires_after_hours = nan\n')
    err = usage_error("resolve", "--campaign", str(broken), option="--campaign")
    assert str(broken) in err and "expires_after_hours" in err and "finite" in err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[smtp]\nport = true\n", "smtp.port: input should be a valid integer, got True"),
        ("[smtp]\nport = 70000\n", "smtp.port: input should be less than or equal to 65535"),
        ("[smtp]\ntimeout_seconds = inf\n", "smtp.timeout_seconds: input should be a finite"),
        ("[smtp]\nrate_per_second = nan\n", "smtp.rate_per_second: input should be a finite"),
        ('[smtp]\nusername = "m"\n', "smtp.allow_insecure_auth = true"),
        ("[smtp]\ncolour = 1\n", "unknown key smtp.colour"),
    ],
)
def test_a_bad_settings_file_is_one_line_exit_2(
    tmp_path: Path, text: str, says: str, project: Path
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(text, encoding="utf-8")
    code, err = invoke("--config", str(config), "resolve", "--campaign", CAMPAIGN)
    assert code == 2
    assert err == f"Error: {config}: {err.split(': ', 2)[2]}"  # one line, naming the file
    assert err.count("\n") == 1 and says in err
    assert "--campaign" not in err  # the settings are to blame, not the option
    assert not project.exists()


@pytest.mark.postgres
def test_db_init_never_shows_the_password(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with_password = pg_url.replace("postgres@", "postgres:hunter2@", 1)  # trust: any password
    assert "hunter2" in with_password
    monkeypatch.setenv("SWMAIL_DATABASE_URL", with_password)
    caplog.set_level("DEBUG")
    result = CliRunner().invoke(cli, ["-vv", "db", "init"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "database ready: postgresql+psycopg://postgres:***@127.0.0.1" in result.stdout
    assert "hunter2" not in result.output and "hunter2" not in caplog.text


@pytest.mark.parametrize(
    "url",
    ["postgresql://mailer:hunter2@127.0.0.1:port/db", "postgresql//mailer:hunter2@127.0.0.1/db"],
)
def test_a_malformed_database_url_is_exit_2_without_the_password(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWMAIL_DATABASE_URL", url)
    code, err = invoke("db", "init")
    assert code == 2 and err.startswith("Error: database URL ") and err.count("\n") == 1
    assert "hunter2" not in err and "***" in err


def test_run_with_auth_over_plain_smtp_is_refused_before_anything(
    monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    monkeypatch.setenv("SWMAIL_SMTP_USERNAME", "mailer")
    monkeypatch.setenv("SWMAIL_SMTP_PASSWORD_ENV", "MAILER_PASSWORD")
    monkeypatch.setenv("MAILER_PASSWORD", "s3cret")
    code, err = invoke("run", "--campaign", CAMPAIGN)
    assert code == 2 and err.count("\n") == 1
    assert "with SWMAIL_SMTP_PASSWORD_ENV, SWMAIL_SMTP_USERNAME:" in err
    assert "clear text" in err and "allow_insecure_auth" in err and "s3cret" not in err
    assert not project.exists()  # no database opened, nothing frozen, nothing sent
    monkeypatch.setenv("SWMAIL_SMTP_ALLOW_INSECURE_AUTH", "true")
    code, err = invoke("run", "--campaign", CAMPAIGN)
    # allowed: it goes on, and stops at the empty database before any SMTP connection
    assert code == 2 and "allow_insecure_auth" not in err and "swmail db init" in err
