"""Matchers compiled from a policy's `match` blocks, evaluated against the facts of one decision, saying why not."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from policy.document import LabelMatch, Match, Trend


class Past(Protocol):
    """The facts that come from the policy state rather than from the output and the call."""

    @property
    def band_trend(self) -> Trend: ...

    @property
    def shift_alerts(self) -> int: ...

    @property
    def dismissed_recently(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class _KnownPast:
    band_trend: Trend
    shift_alerts: int
    dismissed_recently: bool


class Facts:
    """Everything a matcher may test about one decision. Labels are the output's and the call's strings.

    The band trend, the shift's interruptive cards and recent dismissals come from the policy state: given as
    values, or as a `past` that the engine reads only when a matcher or a stage asks (most decisions never do).
    """

    __slots__ = ("age_years", "census", "comfort_care", "labels", "on_antibiotics", "past", "staffing_ratio", "windows")

    def __init__(
        self,
        labels: Mapping[str, str],
        comfort_care: bool = False,
        on_antibiotics: bool = False,
        age_years: float | None = None,
        band_trend: Trend = Trend.NEW,
        census: int | None = None,
        staffing_ratio: float | None = None,
        shift_alerts: int = 0,
        dismissed_recently: bool = False,
        windows: frozenset[str] = frozenset(),
        *,
        past: Past | None = None,
    ) -> None:
        self.labels = labels
        self.comfort_care = comfort_care
        self.on_antibiotics = on_antibiotics
        self.age_years = age_years
        self.census = census
        self.staffing_ratio = staffing_ratio
        self.windows = windows
        self.past: Past = past if past is not None else _KnownPast(band_trend, shift_alerts, dismissed_recently)

    @property
    def band_trend(self) -> Trend:
        return self.past.band_trend

    @property
    def shift_alerts(self) -> int:
        return self.past.shift_alerts

    @property
    def dismissed_recently(self) -> bool:
        return self.past.dismissed_recently

    def relabelled(self, labels: Mapping[str, str]) -> Facts:
        """The same facts with other labels (an inhibition asks them of another alert), sharing the past."""
        return Facts(
            labels,
            self.comfort_care,
            self.on_antibiotics,
            self.age_years,
            census=self.census,
            staffing_ratio=self.staffing_ratio,
            windows=self.windows,
            past=self.past,
        )


# A check answers None when it holds, or a sentence saying why it does not.
_Check = Callable[[Facts], str | None]


def _label_check(name: str, matcher: LabelMatch) -> _Check:
    wanted = frozenset(matcher.values or ())
    pattern = re.compile(matcher.regex) if matcher.regex is not None else None
    shown = f"/{matcher.regex}/" if pattern else sorted(wanted)
    negate = matcher.negate

    def check(facts: Facts) -> str | None:
        value = facts.labels.get(name, "")
        hit = bool(pattern.fullmatch(value)) if pattern is not None else value in wanted
        if hit != negate:
            return None
        return f"{name} {value!r} {'is' if negate else 'is not'} in {shown}"

    return check


def _flag_check(name: str, wanted: bool) -> _Check:
    def check(facts: Facts) -> str | None:
        value = getattr(facts, name)
        return None if value == wanted else f"{name} is {value}, wanted {wanted}"

    return check


def _bound_check(name: str, attr: str, bound: float, *, lower: bool) -> _Check:
    def check(facts: Facts) -> str | None:
        value = getattr(facts, attr)
        # An unknown value never satisfies a bound: a route for "over 65" must not catch a patient of unknown age.
        if value is None:
            return f"{name}: {attr} is unknown"
        ok = value >= bound if lower else value <= bound
        return None if ok else f"{name}: {attr} {value} is {'below' if lower else 'above'} {bound}"

    return check


def _trend_check(trends: frozenset[Trend]) -> _Check:
    def check(facts: Facts) -> str | None:
        ok = facts.band_trend in trends
        return None if ok else f"band_trend {facts.band_trend.value!r} is not in {sorted(t.value for t in trends)}"

    return check


def _window_check(window: str) -> _Check:
    def check(facts: Facts) -> str | None:
        return None if window in facts.windows else f"window {window!r} is not open"

    return check


_LABELS = ("scorer", "band", "hook", "unit_type", "role", "code_status")
_FLAGS = ("comfort_care", "on_antibiotics", "dismissed_recently")
_BOUNDS = (
    ("age_min", "age_years", True),
    ("age_max", "age_years", False),
    ("census_min", "census", True),
    ("census_max", "census", False),
    ("staffing_ratio_min", "staffing_ratio", True),
    ("staffing_ratio_max", "staffing_ratio", False),
    ("shift_alerts_min", "shift_alerts", True),
)


class CompiledMatch:
    """A `match` block turned into checks once, at load time, so a decision only runs closures."""

    __slots__ = ("_checks", "output_labels", "reads")

    def __init__(self, match: Match) -> None:
        checks: list[_Check] = []
        reads: set[str] = set()
        for name in _LABELS:
            matcher = getattr(match, name)
            if matcher is not None:
                checks.append(_label_check(name, matcher))
                reads.add(f"labels.{name}")
        for name in _FLAGS:
            flag = getattr(match, name)
            if flag is not None:
                checks.append(_flag_check(name, flag))
                reads.add(name)
        for name, attr, lower in _BOUNDS:
            bound = getattr(match, name)
            if bound is not None:
                checks.append(_bound_check(name, attr, bound, lower=lower))
                reads.add(attr)
        if match.band_trend is not None:
            checks.append(_trend_check(frozenset(match.band_trend)))
            reads.add("band_trend")
        if match.window is not None:
            checks.append(_window_check(match.window))
            reads.add("windows")
        self._checks = tuple(checks)
        # The facts the checks read ("labels.band", "age_years", ...): equal on these, the answer is the same.
        self.reads = frozenset(reads)
        # Which output labels the block names: an inhibition source that names none is a fact about the patient.
        self.output_labels = {n for n in ("scorer", "band") if getattr(match, n) is not None}

    def failures(self, facts: Facts, *, first_only: bool = False) -> list[str]:
        """Why the facts do not match (empty when they do)."""
        out: list[str] = []
        for check in self._checks:
            why = check(facts)
            if why is not None:
                out.append(why)
                if first_only:
                    break
        return out

    def matches(self, facts: Facts) -> bool:
        return not self.failures(facts, first_only=True)
