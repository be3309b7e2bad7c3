"""Policy documents: the YAML an informaticist writes, validated by pydantic, refused with every error at once."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from policy.port import Action, Indicator, Reason
from policy.templates import check_template

BUNDLED_DIR = Path(__file__).parent / "bundled"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class PolicyValidationError(ValueError):
    """A policy that does not validate: every error, each with the path to the offending field."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("policy refused:\n" + "\n".join(f"  {e}" for e in errors))


def _duration(value: object) -> object:
    # Durations are written as 4h, 30m, 1h30m or 2d; a bare number is minutes.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(minutes=value)
    if isinstance(value, str):
        found = _DURATION.match(value.strip())
        if not found or not value.strip():
            raise ValueError(f"{value!r} is not a duration such as 30m, 4h or 1h30m")
        d, h, m, s = (int(g) if g else 0 for g in found.groups())
        return timedelta(days=d, hours=h, minutes=m, seconds=s)
    return value


def _duration_text(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


Duration = Annotated[
    timedelta, BeforeValidator(_duration), PlainSerializer(_duration_text, return_type=str, when_used="json")
]


class _Strict(BaseModel):
    # A misspelt field must be refused, not ignored: an ignored `supress` would silently surface alerts.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _label_shape(value: object) -> object:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"values": [str(value)]}
    if isinstance(value, list):
        return {"values": value}
    return value


class LabelMatch(_Strict):
    """Equality (`band: high`), in-list (`band: [medium, high]`) or regex (`scorer: {regex: "news.*"}`)."""

    values: tuple[str, ...] | None = Field(default=None, min_length=1)
    regex: str | None = None
    negate: bool = Field(default=False, alias="not")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex {value!r} does not compile: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_form(self) -> LabelMatch:
        if (self.values is None) == (self.regex is None):
            raise ValueError("give either a value, a list of values or {regex: ...}")
        return self


Label = Annotated[LabelMatch, BeforeValidator(_label_shape)]


class Trend(StrEnum):
    NEW = "new"
    WORSENING = "worsening"
    STABLE = "stable"
    IMPROVING = "improving"


class Match(_Strict):
    """What a route, an inhibition or a silence applies to: labels of the output plus facts about the context."""

    scorer: Label | None = None
    band: Label | None = None
    hook: Label | None = None
    unit_type: Label | None = None
    role: Label | None = None
    code_status: Label | None = None
    comfort_care: bool | None = None
    on_antibiotics: bool | None = None
    age_min: float | None = None
    age_max: float | None = None
    band_trend: list[Trend] | None = None
    # Unit facts: patients on the unit, patients per nurse, interruptive cards already shown this shift.
    census_min: int | None = None
    census_max: int | None = None
    staffing_ratio_min: float | None = None
    staffing_ratio_max: float | None = None
    shift_alerts_min: int | None = None
    # Any alert dismissed for this patient in the past 24 hours.
    dismissed_recently: bool | None = None
    # A named time window (declared under `time_windows`) that is open now.
    window: str | None = None

    @field_validator("band_trend", mode="before")
    @classmethod
    def _trend_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("band")
    @classmethod
    def _known_band(cls, value: LabelMatch | None, info: ValidationInfo) -> LabelMatch | None:
        bands: set[str] | None = (info.context or {}).get("bands")
        if value is not None and value.values is not None and bands:
            unknown = sorted(set(value.values) - bands)
            if unknown:
                raise ValueError(f"band {', '.join(unknown)} is not declared under `scorers` (known: {sorted(bands)})")
        return value

    @field_validator("window")
    @classmethod
    def _known_window(cls, value: str | None, info: ValidationInfo) -> str | None:
        windows: set[str] = (info.context or {}).get("windows", set())
        if value is not None and value not in windows:
            raise ValueError(f"time window {value!r} is not declared under `time_windows`")
        return value


class CardTemplate(_Strict):
    """Card text; `{placeholders}` come from the risk output and the context (see policy/templates.py)."""

    summary: str
    detail: str = ""

    @field_validator("summary")
    @classmethod
    def _short(cls, value: str) -> str:
        check_template(value, summary=True)
        return value

    @field_validator("detail")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        check_template(value, summary=False)
        return value


class Lockout(_Strict):
    """How long a dismissal keeps the same alert away, by the dismissed card's indicator."""

    info: Duration | None = None
    warning: Duration | None = None
    critical: Duration | None = None

    def for_indicator(self, indicator: Indicator) -> timedelta | None:
        return {Indicator.INFO: self.info, Indicator.WARNING: self.warning, Indicator.CRITICAL: self.critical}[
            indicator
        ]


class DelaySpec(_Strict):
    """Hold an alert for `for_`, released earlier by a confirming observation, cancelled when `cancel_if` holds."""

    for_: Duration = Field(alias="for")
    until_observation: str | None = None
    cancel_if: Match | None = None


class EscalationStepSpec(_Strict):
    role: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    after_minutes: int = Field(default=0, ge=0)


class RouteSettings(_Strict):
    """Settings a route may set; a route that leaves one unset inherits its parent's (then the defaults')."""

    action: Action | None = None
    reason: Reason | None = None
    indicator: Indicator | None = None
    card: CardTemplate | None = None
    dedup: Duration | None = None
    lockout: Lockout | None = None
    delay: DelaySpec | None = None
    escalation: list[EscalationStepSpec] | None = None
    budget: bool | None = None
    time_windows: list[str] | None = None

    @field_validator("escalation")
    @classmethod
    def _ladder_climbs(cls, value: list[EscalationStepSpec] | None) -> list[EscalationStepSpec] | None:
        if value is not None:
            minutes = [s.after_minutes for s in value]
            if minutes != sorted(minutes):
                raise ValueError("escalation steps must be listed in order of after_minutes")
        return value

    @field_validator("time_windows")
    @classmethod
    def _known_windows(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        windows: set[str] = (info.context or {}).get("windows", set())
        unknown = [w for w in value or () if w not in windows]
        if unknown:
            raise ValueError(f"time windows {unknown} are not declared under `time_windows`")
        return value


class Route(RouteSettings):
    name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    match: Match = Match()
    continue_: bool = Field(default=False, alias="continue")
    routes: list[Route] = []

    @model_validator(mode="after")
    def _delay_needs_spec(self) -> Route:
        if self.action is Action.DELAY and self.delay is None:
            raise ValueError("a route with action delay needs `delay: {for: ...}`")
        return self


class InhibitRule(_Strict):
    """While a source condition holds for a patient, outputs matching `target` are muted for that patient."""

    name: str | None = None
    source: Match
    target: Match
    equal: list[Literal["patient", "encounter"]] = ["patient"]
    reason: Reason = Reason.INHIBITED


_Clock = Annotated[time, BeforeValidator(lambda v: time.fromisoformat(v) if isinstance(v, str) else v)]


class TimeWindow(_Strict):
    """A named window: recurring local times (`start`-`end`) or `external` (set by the EHR, e.g. a procedure)."""

    start: _Clock | None = None
    end: _Clock | None = None
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    external: bool = False
    # How long an external window holds an alert before it is looked at again (the EHR does not say when it ends).
    hold: Duration = timedelta(minutes=30)
    effect: Literal["delay", "downgrade"]
    # Critical alerts are never held or softened by a window unless the author says so explicitly.
    spare_critical: bool = True

    @model_validator(mode="after")
    def _shape(self) -> TimeWindow:
        if self.external == (self.start is not None or self.end is not None):
            raise ValueError("a window is either `external: true` or has both `start` and `end`")
        if not self.external and (self.start is None or self.end is None):
            raise ValueError("a recurring window needs both `start` and `end`")
        return self


class Budget(_Strict):
    """At most `max_interruptive` warning cards per unit and shift; beyond it they are shown as info cards."""

    shifts: list[_Clock] = Field(min_length=1)
    max_interruptive: dict[str, int]


class PolicyDocument(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str = Field(min_length=1)
    description: str = ""
    timezone: str = "UTC"
    # Per scorer, its bands from least to most severe: what "worsened" means, and which band names are valid.
    scorers: dict[str, list[str]] = {}
    defaults: RouteSettings = RouteSettings()
    routes: list[Route] = []
    inhibit_rules: list[InhibitRule] = []
    time_windows: dict[str, TimeWindow] = {}
    budget: Budget | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the validated document: formatting and comments do not change it."""
        canonical = json.dumps(
            self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def error_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("function-") and part not in ("values",):
            out += f".{part}" if out else part
    return out or "(document)"


def _validation_context(raw: dict[str, Any]) -> dict[str, set[str]]:
    # Names declared elsewhere in the document, so a reference to an undeclared band or window is reported at the
    # referring field in the same pass as every other error.
    scorers = raw.get("scorers")
    bands = {str(b) for v in scorers.values() if isinstance(v, list) for b in v} if isinstance(scorers, dict) else set()
    windows = raw.get("time_windows")
    return {"bands": bands, "windows": set(windows) if isinstance(windows, dict) else set()}


def load_policy(source: str | Path) -> PolicyDocument:
    """Parse and validate a policy from YAML text or a file path; refuse it with every error, each with its path."""
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyValidationError([f"(document): not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise PolicyValidationError(["(document): a policy is a mapping with id, version and routes"])
    try:
        return PolicyDocument.model_validate(raw, context=_validation_context(raw))
    except ValidationError as exc:
        errors = [f"{error_path(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        raise PolicyValidationError(errors) from None


def bundled_policy(name: str) -> PolicyDocument:
    """A policy shipped in policy/bundled (e.g. `deterioration`)."""
    return load_policy(BUNDLED_DIR / f"{name}.yaml")
