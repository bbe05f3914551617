"""Settings (SPEC §8): `config/settings.toml`, overridden key by key by `SWMAIL_<SECTION>_<KEY>`.

Validated once at the edge by pydantic models (strict types, ranges, unknown keys refused), so
that the rest of the program receives typed values and a bad setting is one line naming the key
and where it came from (the file, or the environment variable), exit 2, before anything happens.
Passwords never live in the file: `smtp.password_env` names the environment variable that holds
it.

Two sources, later wins: the TOML file (a UTF-8 BOM is accepted, as Windows editors write one),
then the environment. File values must already have the right TOML type (`port = "25"` is
refused); environment values are text and are parsed as the key's type (`SWMAIL_SMTP_PORT=25`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from jobs.config.problems import first_problem
from jobs.errors import ConfigError
from jobs.i18n import _, tr

__all__ = [
    "DEFAULT_CONFIG",
    "VERP_PLACEHOLDER",
    "AlertSettings",
    "DatabaseSettings",
    "MessageSettings",
    "PathSettings",
    "Settings",
    "SmtpSettings",
    "UiSettings",
    "load_settings",
    "read_toml",
    "return_path_problem",
]

DEFAULT_CONFIG = Path("config/settings.toml")
VERP_PLACEHOLDER = "{token}"  # §10: where message.return_path takes each delivery's token
_BARE_ADDRESS = re.compile(r"[\x21-\x7e]+@[A-Za-z0-9.-]+")
DEFAULT_DATABASE_URL = "sqlite:///var/swmail.sqlite3"
ENV_PREFIX = "SWMAIL_"
BOM = "\ufeff"

Security = Literal["none", "starttls", "tls"]
Charset = Literal["utf-8", "iso-2022-jp"]
# Numbers an operator writes by hand: `inf`, `nan` and 0 would mean "wait forever" or "never".
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=1, le=65535)]
AtLeastOne = Annotated[int, Field(ge=1)]
Text = Annotated[str, Field(min_length=1)]

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


class DatabaseSettings(BaseModel):
    model_config = _STRICT

    url: Text = DEFAULT_DATABASE_URL
    ledger_url: str = ""  # empty: the job's own tables live in `url`
    # PostgreSQL from 300,000 customers: `resolve` and approvals count in worker processes.
    parallel_count: bool = True

    @property
    def effective_ledger_url(self) -> str:
        return self.ledger_url or self.url


class SmtpSettings(BaseModel):
    model_config = _STRICT

    host: Text = "127.0.0.1"
    port: Port = 2525
    security: Security = "none"
    username: str = ""
    password_env: str = ""
    # SPEC §8: AUTH without TLS sends the password in clear; only on an explicit yes.
    allow_insecure_auth: bool = False
    connections: AtLeastOne = 4
    rate_per_second: NonNegative = 0.0  # 0: no limit
    timeout_seconds: Seconds = 30.0
    max_attempts: AtLeastOne = 5
    backoff_initial_seconds: NonNegative = 1.0
    backoff_max_seconds: Seconds = 60.0
    ca_file: str = ""  # extra CA bundle for a private relay; empty: the system store
    # SPEC §9: a worker's claim is taken back after this long without its owner
    claim_lease_seconds: Seconds = 60.0

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> Self:
        if self.username and self.security == "none" and not self.allow_insecure_auth:
            raise ValueError(
                _(
                    "smtp.username is set but smtp.security = none would send the password in "
                    'clear text; use "starttls" or "tls", or set smtp.allow_insecure_auth = true'
                )
            )
        return self

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError(
                _("smtp.backoff_max_seconds must not be less than smtp.backoff_initial_seconds")
            )
        return self

    def password(self) -> str | None:
        """The AUTH password, read from the environment only when a username is set."""
        if not self.username:
            return None
        if not self.password_env:
            raise ConfigError(_("smtp.username is set but smtp.password_env is empty"))
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                tr(
                    "smtp.password_env names {password_env!r}, which is not set in the environment",
                    password_env=self.password_env,
                )
            )
        return value


def _is_bare_address(value: str) -> bool:
    return bool(_BARE_ADDRESS.fullmatch(value)) and not any(ch in value for ch in '<>(),;:"[]\\')


def return_path_problem(value: str) -> str | None:
    """What is wrong with `message.return_path`: one bare address, `{token}` at most once and
    before the @; None when it is fine (or empty: the From address)."""
    if not value:
        return None
    where = f"message.return_path {value!r}"
    if value.count(VERP_PLACEHOLDER) > 1:
        return f"{where} holds {VERP_PLACEHOLDER} more than once"
    local, at, _ = value.partition("@")
    if VERP_PLACEHOLDER in value and VERP_PLACEHOLDER not in local:
        return f"{where}: {VERP_PLACEHOLDER} must be in the part before the @"
    if not at or not _is_bare_address(value.replace(VERP_PLACEHOLDER, "0-aaaaaaaaaaaaa")):
        return f"{where} is not a bare address like bounce+{VERP_PLACEHOLDER}@example.jp"
    return None


class MessageSettings(BaseModel):
    model_config = _STRICT

    from_: Text = Field("SmileWorks事務局 <info@smileworks.example.jp>", alias="from")
    reply_to: str = "support@smileworks.example.jp"
    charset: Charset = "utf-8"
    message_id_domain: Text = "mailer.smileworks.example.jp"
    # §10 VERP: the envelope sender, e.g. "bounce+{token}@mailer.example.jp"; empty: the From
    # address. `{token}` is a keyed HMAC of the delivery, keyed by the variable `verp_key_env`.
    return_path: str = ""
    verp_key_env: str = ""
    # §10: every message of every run goes to this one address instead (staging, rehearsals)
    redirect_all_to: str = ""

    @field_validator("return_path")
    @classmethod
    def _return_path_shape(cls, value: str) -> str:
        problem = return_path_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("redirect_all_to")
    @classmethod
    def _redirect_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not _is_bare_address(value):
            raise ValueError(
                tr(
                    "message.redirect_all_to {value!r} is not a bare address like me@example.jp",
                    value=value,
                )
            )
        return value

    def verp_key(self) -> bytes | None:
        """The VERP key, read from the environment only when `return_path` holds `{token}`."""
        if VERP_PLACEHOLDER not in self.return_path:
            return None
        if not self.verp_key_env:
            raise ConfigError(
                tr(
                    "message.return_path holds {token} but message.verp_key_env is empty",
                    token="{token}",  # the placeholder the operator writes, shown as written
                )
            )
        value = os.environ.get(self.verp_key_env, "")
        if len(value) < 16:
            raise ConfigError(
                tr(
                    "message.verp_key_env names {name!r}, which must hold a secret of at least 16"
                    " characters in the environment",
                    name=self.verp_key_env,
                )
            )
        return value.encode()


class PathSettings(BaseModel):
    """Where operator-editable files live; relative paths are taken from the working folder."""

    model_config = _STRICT

    templates: Text = "templates"
    campaigns: Text = "config/campaigns"


class UiSettings(BaseModel):
    """What operators read (issue 11): the language of summaries, errors, help and reports."""

    model_config = _STRICT

    # empty: `LC_ALL` / `LC_MESSAGES` / `LANG` decide (ja_JP.UTF-8 → ja), else English
    language: Literal["", "ja", "en"] = ""


def _comma_list(value: Any) -> Any:
    """An environment variable holds a list as `a@example.jp,b@example.jp`."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


Address = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]


class AlertSettings(BaseModel):
    """§9 alerts: who gets the one summary e-mail when a `nightly` needs a person."""

    model_config = _STRICT

    to: Annotated[list[Address], BeforeValidator(_comma_list)] = Field(default_factory=list)


class Settings(BaseSettings):
    """The whole settings file; each section a model, every key typed and ranged."""

    model_config = SettingsConfigDict(strict=True, extra="forbid", frozen=True)

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    message: MessageSettings = Field(default_factory=MessageSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load_settings` merges the two sources itself, to know where each value came from
        # (the message names the file or the variable); nothing is read behind its back.
        return (init_settings,)


def _sections() -> dict[str, type[BaseModel]]:
    sections: dict[str, type[BaseModel]] = {}
    for name, info in Settings.model_fields.items():
        assert isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        sections[name] = info.annotation
    return sections


def _key(name: str, info: FieldInfo) -> str:
    return info.alias or name  # `from_` is spelled `from` in files and env


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; a leading UTF-8 BOM is accepted, any other problem is one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            tr("{path}: {what} is not UTF-8: {reason}", path=path, what=what, reason=exc.reason)
        ) from None
    except OSError as exc:
        raise ConfigError(
            tr(
                "{path}: cannot read {what}: {strerror}",
                path=path,
                what=what,
                strerror=exc.strerror,
            )
        ) from None
    try:
        return tomllib.loads(text.removeprefix(BOM))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(tr("{path}: not valid TOML: {exc}", path=path, exc=exc)) from None


class TomlFileSource(PydanticBaseSettingsSource):
    """The settings file, as TOML typed it."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class EnvOverrideSource(PydanticBaseSettingsSource):
    """`SWMAIL_<SECTION>_<KEY>` variables, each text parsed as its key's type."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._env = env
        self.origins: dict[tuple[str, str], str] = {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self().get(field_name), field_name, True

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for section, model in _sections().items():
            for name, info in model.model_fields.items():
                key = _key(name, info)
                variable = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
                if variable not in self._env:
                    continue
                self.origins[(section, key)] = variable
                found.setdefault(section, {})[key] = self._parse(
                    section, key, info, self._env[variable], variable
                )
        return found

    @staticmethod
    def _parse(section: str, key: str, info: FieldInfo, raw: str, variable: str) -> Any:
        if info.annotation is str:
            return raw
        hint: Any = info.annotation  # the key's type, and its range when it has one
        if info.metadata:
            hint = Annotated[hint, *info.metadata]
        adapter: TypeAdapter[Any] = TypeAdapter(hint)
        try:
            return adapter.validate_strings(raw.strip(), strict=True)
        except ValidationError as exc:
            raise ConfigError(first_problem(exc, variable, prefix=(section, key))) from None


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
        data = read_toml(chosen, _("settings file"))
    elif explicit:
        raise ConfigError(tr("{chosen}: settings file not found", chosen=chosen))
    else:
        origin = "(defaults)"
    overrides = EnvOverrideSource(Settings, env)
    merged = _merge(TomlFileSource(Settings, data)(), overrides())
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(
            first_problem(exc, origin, origins=overrides.origins, sections=True)
        ) from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` wins key by key inside each section."""
    merged = dict(base)
    for section, values in over.items():
        current = merged.get(section, {})
        if isinstance(current, dict):  # not a table: validation reports it, naming the file
            merged[section] = {**current, **values}
    return merged
