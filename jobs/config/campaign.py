"""Campaign files (SPEC §8): `config/campaigns/<id>.toml`, checked once into a typed `Campaign`.

An operator edits these by hand, so every mistake is one message naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from jobs.config.schedule import parse_schedule
from jobs.errors import ConfigError
from resolver.model import Audience, CampaignPolicy, DedupeMode, Plan, Product

__all__ = ["Campaign", "load_campaign", "resolve_campaign_path"]

_KEYS = {
    "id",
    "template",
    "audiences",
    "dedupe",
    "schedule",
    "expires_after_hours",
    "require_approval",
    "max_drift_percent",
    "filters",
}
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
    require_approval: bool = False  # §9: sent only after `approve` for the run key
    max_drift_percent: float = 10.0  # §9: refused when an audience's send count drifts more

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
    require_approval = data.get("require_approval", False)
    if not isinstance(require_approval, bool):
        raise ConfigError(f"{name}: require_approval must be true or false")
    drift = data.get("max_drift_percent", 10)
    if isinstance(drift, bool) or not isinstance(drift, (int, float)) or drift < 0:
        raise ConfigError(f"{name}: max_drift_percent must be a number, 0 or more")
    schedule = parse_schedule(data.get("schedule"), f"{name}: schedule")
    return Campaign(
        id=campaign_id,
        template=template,
        path=path.resolve(),
        policy=CampaignPolicy(audiences=audiences, dedupe=dedupe, plans=plans, products=products),
        schedule=None if schedule is None else schedule.text,
        expires_after_hours=float(expires),
        require_approval=require_approval,
        max_drift_percent=float(drift),
    )
