"""Campaign files (SPEC §8): `config/campaigns/<id>.toml`, checked once into a typed `Campaign`.

An operator edits these by hand, so every mistake is one line naming the file and the key (exit
2): a pydantic model with strict types, ranges and unknown keys refused, in `[filters]` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
)

from jobs.config.problems import first_problem
from jobs.config.runs import name_problem
from jobs.config.schedule import parse_schedule
from jobs.config.settings import read_toml
from jobs.errors import ConfigError
from jobs.i18n import _, tr
from resolver.model import Audience, CampaignPolicy, DedupeMode, Plan, Product

__all__ = ["Campaign", "CampaignFile", "load_campaign", "resolve_campaign_path"]


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
        hint = tr(" (known campaigns: {names})", names=", ".join(known)) if known else ""
        raise ConfigError(
            tr(
                "campaign {value!r} not found: no file {path}{hint}",
                value=value,
                path=path,
                hint=hint,
            )
        )
    return path


def _one_or_many(value: Any) -> Any:
    """`audiences = "customer"` means a list of one; a list stays as written."""
    return [value] if isinstance(value, str) else value


# Enum members are spelled in the file as their values: lax for the member, strict for the list.
AudienceList = Annotated[
    list[Annotated[Audience, Strict(False)]], BeforeValidator(_one_or_many), Field(min_length=1)
]
PlanList = Annotated[
    list[Annotated[Plan, Strict(False)]], BeforeValidator(_one_or_many), Field(min_length=1)
]
ProductList = Annotated[
    list[Annotated[Product, Strict(False)]], BeforeValidator(_one_or_many), Field(min_length=1)
]

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class Filters(BaseModel):
    """`[filters]`: customers only (SPEC §8); absent means no filter."""

    model_config = _STRICT

    plans: PlanList | None = None
    products: ProductList | None = None


class CampaignFile(BaseModel):
    """The keys of a campaign file as written; `load_campaign` turns it into a `Campaign`."""

    model_config = _STRICT

    id: str
    template: Annotated[str, Field(min_length=1)]
    audiences: AudienceList = Field(default_factory=lambda: list(Audience))
    dedupe: Annotated[DedupeMode, Strict(False)] = DedupeMode.ADDRESS
    # Kept as written; `nightly` gives it its meaning (one-off date-time or cron).
    schedule: str | datetime | None = None
    expires_after_hours: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 24.0
    require_approval: bool = False
    max_drift_percent: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 10.0
    filters: Filters = Field(default_factory=Filters)

    @field_validator("id")
    @classmethod
    def _id_fits_a_run_id(cls, value: str) -> str:
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(tr("{problem} (it is part of RUN_ID)", problem=problem))
        return value

    @field_validator("template")
    @classmethod
    def _template_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(_("must name a template folder or path"))
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule_shape(cls, value: str | datetime | None) -> str | None:
        return _check_schedule(value)


def _check_schedule(schedule: str | datetime | None) -> str | None:
    """One-off: ISO-8601 date-time WITH offset; recurring: five cron fields (Asia/Tokyo)."""
    parsed = parse_schedule(schedule)  # ValueError: pydantic reports it with file and key
    return None if parsed is None else parsed.text


def load_campaign(path: Path) -> Campaign:
    """Read and check one campaign file."""
    data = read_toml(path, _("campaign file"))
    try:
        checked = CampaignFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(first_problem(exc, str(path))) from None
    filters = checked.filters
    return Campaign(
        id=checked.id,
        template=checked.template,
        path=path.resolve(),
        policy=CampaignPolicy(
            audiences=frozenset(checked.audiences),
            dedupe=checked.dedupe,
            plans=None if filters.plans is None else frozenset(filters.plans),
            products=None if filters.products is None else frozenset(filters.products),
        ),
        schedule=checked.schedule if isinstance(checked.schedule, str) else None,
        expires_after_hours=checked.expires_after_hours,
        require_approval=checked.require_approval,
        max_drift_percent=checked.max_drift_percent,
    )
