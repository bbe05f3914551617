"""Settings files and SWMAIL_ overrides (SPEC §8, issue 6 item 3): typed, ranged, one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.config.settings import Settings, load_settings
from jobs.errors import ConfigError


def settings_file(tmp_path: Path, text: str, *, bom: bool = False) -> Path:
    path = tmp_path / "settings.toml"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def load(path: Path, **env: str) -> Settings:
    return load_settings(path, env=env)


def refused(path: Path, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path, **env)
    message = str(caught.value)
    assert "\n" not in message  # one line, never pydantic's multi-line dump
    assert "errors.pydantic.dev" not in message
    assert caught.value.exit_code == 2
    return message


def test_defaults_when_the_file_is_empty(tmp_path: Path) -> None:
    settings = load(settings_file(tmp_path, ""))
    assert settings.smtp.port == 2525
    assert settings.smtp.allow_insecure_auth is False
    assert settings.smtp.claim_lease_seconds == 60
    assert settings.message.from_.startswith("SmileWorks事務局")


def test_the_shipped_file_loads() -> None:
    settings = load_settings(Path(__file__).resolve().parents[2] / "config" / "settings.toml", {})
    assert settings.smtp.security == "none" and settings.smtp.username == ""


@pytest.mark.parametrize(
    ("line", "key", "says"),
    [
        ("[smtp]\nport = true", "smtp.port", "valid integer"),
        ("[smtp]\nport = 0", "smtp.port", "greater than or equal to 1"),
        ("[smtp]\nport = 65536", "smtp.port", "less than or equal to 65535"),
        ('[smtp]\nport = "2525"', "smtp.port", "valid integer"),
        ("[smtp]\nport = 25.5", "smtp.port", "valid integer"),
        ("[smtp]\ntimeout_seconds = inf", "smtp.timeout_seconds", "finite"),
        ("[smtp]\ntimeout_seconds = nan", "smtp.timeout_seconds", "finite"),
        ("[smtp]\ntimeout_seconds = 0", "smtp.timeout_seconds", "greater than 0"),
        ("[smtp]\nrate_per_second = nan", "smtp.rate_per_second", "finite"),
        ("[smtp]\nrate_per_second = -1", "smtp.rate_per_second", "greater than or equal to 0"),
        ("[smtp]\nconnections = 0", "smtp.connections", "greater than or equal to 1"),
        ("[smtp]\nmax_attempts = 0", "smtp.max_attempts", "greater than or equal to 1"),
        ("[smtp]\nclaim_lease_seconds = 0", "smtp.claim_lease_seconds", "greater than 0"),
        ("[smtp]\nclaim_lease_seconds = inf", "smtp.claim_lease_seconds", "finite"),
        ('[smtp]\nallow_insecure_auth = "yes"', "smtp.allow_insecure_auth", "valid boolean"),
        ('[smtp]\nsecurity = "ssl"', "smtp.security", "'none', 'starttls' or 'tls'"),
        ('[message]\ncharset = "shift_jis"', "message.charset", "'utf-8' or 'iso-2022-jp'"),
        ("[database]\nurl = 5", "database.url", "valid string"),
        ("[smtp]\nbackoff_max_seconds = 0.5", "smtp.backoff_max_seconds", "backoff_initial"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key_and_the_file(
    tmp_path: Path, line: str, key: str, says: str
) -> None:
    path = settings_file(tmp_path, line + "\n")
    message = refused(path)
    assert message.startswith(f"{path}: ")
    assert key in message and says in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[smtp]\nprot = 25\n", "unknown key smtp.prot"),
        ("[smpt]\nport = 25\n", "unknown section [smpt]"),
        ("smtp = 5\n", "[smtp] must be a table"),
        ("[database\n", "not valid TOML"),
    ],
)
def test_unknown_keys_and_sections_are_refused(tmp_path: Path, text: str, says: str) -> None:
    path = settings_file(tmp_path, text)
    message = refused(path)
    assert says in message and str(path) in message


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path, '[message]\nfrom = "事務局 <info@example.jp>"\n[smtp]\nport = 2600\n', bom=True
    )
    settings = load(path)
    assert settings.smtp.port == 2600 and settings.message.from_ == "事務局 <info@example.jp>"


def test_env_overrides_are_parsed_as_the_keys_type(tmp_path: Path) -> None:
    path = settings_file(tmp_path, '[smtp]\nport = 25\nhost = "relay.example.jp"\n')
    settings = load(
        path,
        SWMAIL_SMTP_PORT="2526",
        SWMAIL_SMTP_TIMEOUT_SECONDS="2.5",
        SWMAIL_SMTP_ALLOW_INSECURE_AUTH="true",
        SWMAIL_SMTP_USERNAME="12345",  # text stays text
        SWMAIL_SMTP_PASSWORD_ENV="MAILER_PW",
        SWMAIL_MESSAGE_FROM="x@example.jp",
        SWMAIL_DATABASE_LEDGER_URL="sqlite:///l.db",
        SWMAIL_DATABASE_PARALLEL_COUNT="false",
    )
    assert settings.smtp.port == 2526 and settings.smtp.host == "relay.example.jp"
    assert settings.smtp.timeout_seconds == 2.5
    assert settings.smtp.allow_insecure_auth is True and settings.smtp.username == "12345"
    assert settings.message.from_ == "x@example.jp"
    assert settings.database.ledger_url == "sqlite:///l.db"
    assert settings.database.parallel_count is False


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SWMAIL_SMTP_PORT", "true", "valid integer"),
        ("SWMAIL_SMTP_PORT", "70000", "less than or equal to 65535"),
        ("SWMAIL_SMTP_TIMEOUT_SECONDS", "inf", "finite"),
        ("SWMAIL_SMTP_RATE_PER_SECOND", "nan", "finite"),
        ("SWMAIL_SMTP_SECURITY", "ssl", "'none', 'starttls' or 'tls'"),
    ],
)
def test_a_bad_env_override_names_the_variable(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    message = refused(settings_file(tmp_path, ""), **{variable: value})
    assert message.startswith(f"{variable}: ") and says in message


def test_auth_without_tls_is_a_config_error_unless_allowed(tmp_path: Path) -> None:
    text = '[smtp]\nusername = "mailer"\npassword_env = "PW"\n'
    message = refused(settings_file(tmp_path, text))
    assert "smtp.allow_insecure_auth" in message and "clear text" in message
    assert load(settings_file(tmp_path, text + "allow_insecure_auth = true\n")).smtp.username
    assert load(settings_file(tmp_path, text + 'security = "starttls"\n')).smtp.username
    # the environment can make the same choice
    assert load(settings_file(tmp_path, text), SWMAIL_SMTP_SECURITY="tls").smtp.security == "tls"


def test_a_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="settings file not found"):
        load(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="settings file not found"):
        load_settings(None, env={"SWMAIL_CONFIG": str(tmp_path / "absent.toml")})
    assert load_settings(None, env={"SWMAIL_CONFIG": str(settings_file(tmp_path, ""))})
