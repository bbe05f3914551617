"""Campaign files (SPEC §8): `config/campaigns/<id>.toml`, checked once into a typed `Campaign`.

An operator edits these by hand, so every mistake is one message naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from jobs.errors import ConfigError
from resolver.model import Audience, CampaignPolicy, DedupeMode, Plan, Product

__all__ = ["Campaign", "load_campaign", "resolve_campaign_path"]

_KEYS = {"id", "template", "audiences", "dedupe", "schedule", "expires_after_hours", "filters"}
_FILTER_KEYS = {"plans", "products"}

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    template: str
    path: Path
    policy: CampaignPolicy
    schedule: str | None = None
    expires_after_hours: float = 24.0

    @property
    def folder(self) -> Path:
        return self.path.parent


def resolve_campaign_path(value: str, campaigns_dir: Path) -> Path:
    """`--campaign` is an id (`<campaigns_dir>/<id>.toml`) or a path to a campaign file."""
    if "/" in value or value.endswith(".toml"):
        path = Path(value)
    else:
        path = campaigns_dir / f"{value}.toml"
    if not path.is_file():
        known = (
            sorted(p.stem for p in campaigns_dir.glob("*.toml")) if campaigns_dir.is_dir() else []
        )
        hint = f" (known campaigns: {', '.join(known)})" if known else ""
        raise ConfigError(f"campaign {value!r} not found: no file {path}{hint}")
    return path


def _enum_set(raw: Any, enum: type[E], where: str) -> frozenset[E]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where} must be a non-empty list")
    values = []
    for item in raw:
        try:
            values.append(enum(item))
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            raise ConfigError(f"{where}: unknown value {item!r} (allowed: {allowed})") from None
    return frozenset(values)


def _check_schedule(schedule: Any, where: str) -> str | None:
    """One-off: ISO-8601 date-time WITH offset; recurring: five cron fields (Asia/Tokyo)."""
    if schedule is None:
        return None
    if isinstance(schedule, datetime):
        if schedule.tzinfo is None:
            raise ConfigError(f"{where}: a one-off schedule needs an offset, e.g. +09:00")
        return schedule.isoformat()
    if not isinstance(schedule, str) or not schedule.strip():
        raise ConfigError(f"{where} must be an ISO-8601 date-time with offset or a cron expression")
    text = schedule.strip()
    if len(text.split()) == 5:
        return text
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{where}: {text!r} is neither an ISO-8601 date-time nor a five-field cron expression"
        ) from None
    if parsed.tzinfo is None:
        raise ConfigError(f"{where}: a one-off schedule needs an offset, e.g. {text}+09:00")
    return text


def load_campaign(path: Path) -> Campaign:
    """Read and check one campaign file."""
    name = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read campaign file: {exc}") from None
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{name}: unknown key {sorted(unknown)[0]!r}")
    campaign_id = data.get("id")
    if not isinstance(campaign_id, str) or not campaign_id.strip():
        raise ConfigError(f"{name}: `id` is required")
    if "/" in campaign_id or any(ch.isspace() for ch in campaign_id):
        raise ConfigError(f"{name}: `id` must not contain '/' or spaces (it is part of RUN_ID)")
    template = data.get("template")
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"{name}: `template` is required")
    audiences = (
        _enum_set(data["audiences"], Audience, f"{name}: audiences")
        if "audiences" in data
        else frozenset(Audience)
    )
    try:
        dedupe = DedupeMode(data.get("dedupe", DedupeMode.ADDRESS.value))
    except ValueError:
        raise ConfigError(
            f"{name}: dedupe must be 'address' or 'address_per_account', got {data['dedupe']!r}"
        ) from None
    filters = data.get("filters", {})
    if not isinstance(filters, dict):
        raise ConfigError(f"{name}: [filters] must be a table")
    unknown = set(filters) - _FILTER_KEYS
    if unknown:
        raise ConfigError(f"{name}: unknown filter {sorted(unknown)[0]!r}")
    plans = (
        _enum_set(filters["plans"], Plan, f"{name}: filters.plans") if "plans" in filters else None
    )
    products = (
        _enum_set(filters["products"], Product, f"{name}: filters.products")
        if "products" in filters
        else None
    )
    expires = data.get("expires_after_hours", 24)
    if isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0:
        raise ConfigError(f"{name}: expires_after_hours must be a positive number")
    return Campaign(
        id=campaign_id,
        template=template,
        path=path.resolve(),
        policy=CampaignPolicy(audiences=audiences, dedupe=dedupe, plans=plans, products=products),
        schedule=_check_schedule(data.get("schedule"), f"{name}: schedule"),
        expires_after_hours=float(expires),
    )
