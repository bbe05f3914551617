"""Settings (SPEC §8): `config/settings.toml`, overridden key by key by `SWMAIL_<SECTION>_<KEY>`.

Parsed and checked once at the edge so that the rest of the program receives typed values and a
bad setting is one clear message (exit 2) before anything happens. Passwords never live in the
file: `smtp.password_env` names the environment variable that holds it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from jobs.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "AlertSettings",
    "DatabaseSettings",
    "MessageSettings",
    "PathSettings",
    "Settings",
    "SmtpSettings",
    "load_settings",
]

DEFAULT_CONFIG = Path("config/settings.toml")
DEFAULT_DATABASE_URL = "sqlite:///var/swmail.sqlite3"

Security = Literal["none", "starttls", "tls"]
Charset = Literal["utf-8", "iso-2022-jp"]


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = DEFAULT_DATABASE_URL
    ledger_url: str = ""  # empty: the job's own tables live in `url`

    @property
    def effective_ledger_url(self) -> str:
        return self.ledger_url or self.url


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 2525
    security: Security = "none"
    username: str = ""
    password_env: str = ""
    connections: int = 4
    rate_per_second: float = 0.0  # 0: no limit
    timeout_seconds: float = 30.0
    max_attempts: int = 5
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    ca_file: str = ""  # extra CA bundle for a private relay; empty: the system store

    def password(self) -> str | None:
        """The AUTH password, read from the environment only when a username is set."""
        if not self.username:
            return None
        if not self.password_env:
            raise ConfigError("smtp.username is set but smtp.password_env is empty")
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"smtp.password_env names {self.password_env!r}, which is not set in the"
                " environment"
            )
        return value


@dataclass(frozen=True, slots=True)
class MessageSettings:
    from_: str = "SmileWorks事務局 <info@smileworks.example.jp>"
    reply_to: str = "support@smileworks.example.jp"
    charset: Charset = "utf-8"
    message_id_domain: str = "mailer.smileworks.example.jp"


@dataclass(frozen=True, slots=True)
class PathSettings:
    """Where operator-editable files live; relative paths are taken from the working folder."""

    templates: str = "templates"
    campaigns: str = "config/campaigns"


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """§9 alerts: who gets the one summary e-mail when a `nightly` needs a person."""

    to: tuple[str, ...] = ()  # empty: no alert e-mail


@dataclass(frozen=True, slots=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    message: MessageSettings = field(default_factory=MessageSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    source: str = "(defaults)"  # where the settings came from, for messages


_SECTIONS: dict[str, type[Any]] = {
    "database": DatabaseSettings,
    "smtp": SmtpSettings,
    "message": MessageSettings,
    "paths": PathSettings,
    "alerts": AlertSettings,
}


def _key_of(f_name: str) -> str:
    return f_name.rstrip("_")  # `from_` is spelled `from` in files and env


def _coerce(section: str, key: str, value: Any, default: Any, annotation: Any, origin: str) -> Any:
    where = f"{origin}: {section}.{key}"
    choices = get_args(annotation) if getattr(annotation, "__origin__", None) is Literal else ()
    if isinstance(annotation, str) and annotation in ("Security", "Charset"):
        choices = get_args(Security if annotation == "Security" else Charset)
    if isinstance(default, tuple):
        # a TOML list of addresses, or a comma-separated list in the environment
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{where} must be a list of e-mail addresses, got {value!r}")
        cleaned = tuple(i.strip() for i in items if i.strip())
        bad = [i for i in cleaned if "@" not in i or any(ch.isspace() for ch in i)]
        if bad:
            raise ConfigError(f"{where}: {bad[0]!r} is not an e-mail address")
        return cleaned
    try:
        if isinstance(default, bool):
            raise TypeError  # no boolean settings yet; refuse rather than guess
        if isinstance(default, int):
            result: Any = int(value)
            if isinstance(value, float):
                raise ValueError
        elif isinstance(default, float):
            result = float(value)
        else:
            if not isinstance(value, str):
                raise ValueError
            result = value
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {type(default).__name__}, got {value!r}") from None
    if choices:
        result = str(result).lower()
        if result not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
    if isinstance(result, (int, float)) and result < 0:
        raise ConfigError(f"{where} must not be negative, got {value!r}")
    return result


def _build(data: Mapping[str, Any], env: Mapping[str, str], origin: str) -> Settings:
    unknown_sections = set(data) - set(_SECTIONS)
    if unknown_sections:
        raise ConfigError(f"{origin}: unknown section [{sorted(unknown_sections)[0]}]")
    built: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        known = {_key_of(f.name): f for f in fields(cls)}
        for key in raw:
            if key not in known:
                raise ConfigError(f"{origin}: unknown setting {section}.{key}")
        values: dict[str, Any] = {}
        defaults = cls()
        for key, f in known.items():
            default = getattr(defaults, f.name)
            env_name = f"SWMAIL_{section.upper()}_{key.upper()}"
            if env_name in env:
                values[f.name] = _coerce(section, key, env[env_name], default, f.type, env_name)
            elif key in raw:
                values[f.name] = _coerce(section, key, raw[key], default, f.type, origin)
        built[section] = replace(defaults, **values)
    settings = Settings(**built, source=origin)
    if settings.smtp.connections < 1:
        raise ConfigError(f"{origin}: smtp.connections must be at least 1")
    if settings.smtp.max_attempts < 1:
        raise ConfigError(f"{origin}: smtp.max_attempts must be at least 1")
    return settings


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from `path` (or `$SWMAIL_CONFIG`, or the default file) plus env overrides.

    The default file may be absent (built-in defaults apply); a file named explicitly must exist.
    """
    env = os.environ if env is None else env
    explicit = path is not None or "SWMAIL_CONFIG" in env
    chosen = path if path is not None else Path(env.get("SWMAIL_CONFIG", str(DEFAULT_CONFIG)))
    data: dict[str, Any] = {}
    origin = str(chosen)
    if chosen.is_file():
        try:
            data = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{chosen}: not valid TOML: {exc}") from None
    elif explicit:
        raise ConfigError(f"{chosen}: settings file not found")
    else:
        origin = "(defaults)"
    return _build(data, env, origin)
