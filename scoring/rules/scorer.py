"""A rule scorer: one validated rule set (NEWS2, qSOFA, SIRS, ...) behind the `Scorer` port.

It gathers inputs inside the look-back, rounds them by the rule set's stated rule, asks the band matcher for each
parameter's band, adds the points up criterion by criterion and picks the first risk band that holds. Missing
inputs give a partial score, marked as such and explained, never a silent zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from clinical.model import ClinicalContext
from scoring.port import NO_DATA_BAND, Contribution, FeatureValue, RiskOutput
from scoring.rules.inputs import DEFAULT_LOOKBACK, feature_of, feature_text, input_hash, observation_in_window
from scoring.rules.matcher import BandMatcher, Lookup
from scoring.rules.rounding import round_half_up
from scoring.rules.schema import Band, Criterion, Parameter, RiskBand, RuleSet, Table


class _Placed(NamedTuple):
    """A parameter that could be looked up: the table chosen, the value used and how it was described."""

    table: int
    value: float | str
    described: str


@dataclass(frozen=True, slots=True)
class _Criterion:
    name: str
    members: tuple[str, ...]
    determined_by: str
    max_points: int


@dataclass(frozen=True, slots=True)
class _TablePlan:
    """One table of a parameter as the hot path needs it, read once from the rule set."""

    when: tuple[tuple[str, str], ...]
    coded: bool
    known_codes: frozenset[str]
    # " (scale 1)" when the parameter has several tables, else "".
    label: str
    points: tuple[int, ...]
    # Per band: " is in band 21–24: 2 points", the middle of its explanation line.
    verdicts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    """One parameter as the hot path needs it. Features and lines that never vary are built once and shared: both
    are frozen, so a shared instance is indistinguishable from a fresh one."""

    parameter: Parameter
    tables: tuple[_TablePlan, ...]
    # " /min", or "" for a unitless parameter.
    unit_text: str
    # The feature of a parameter with no usable value: no observation, or no finite number.
    absent: FeatureValue
    # "." and the caveat, which end every explanation line of this parameter.
    tail: str
    no_observation_reason: str
    no_observation_line: Contribution


def _format(number: float, precision: int) -> str:
    return f"{number:.{precision}f}"


def _band_text(band: Band, precision: int) -> str:
    if band.codes is not None:
        return ", ".join(band.codes)
    if band.min is None:
        return "any value" if band.max is None else f"≤{_format(band.max, precision)}"
    if band.max is None:
        return f"≥{_format(band.min, precision)}"
    return f"{_format(band.min, precision)}–{_format(band.max, precision)}"


def _table_plan(parameter: Parameter, table: Table) -> _TablePlan:
    verdicts = tuple(
        f" is in band {_band_text(band, parameter.precision)}: {band.points} point{'' if band.points == 1 else 's'}"
        for band in table.bands
    )
    return _TablePlan(
        when=tuple(table.when.items()),
        coded=table.coded,
        known_codes=frozenset(code for band in table.bands for code in band.codes or []),
        label="" if parameter.tables is None else f" ({table.label})",
        points=tuple(band.points for band in table.bands),
        verdicts=verdicts,
    )


def _plan(parameter: Parameter, lookback: timedelta) -> _Plan:
    caveat = f" Note: {parameter.caveat}" if parameter.caveat else ""
    reason = f"no usable observation in the {lookback.total_seconds() / 3600:g} h before as_of"
    return _Plan(
        parameter=parameter,
        tables=tuple(_table_plan(parameter, table) for table in parameter.all_tables),
        unit_text=f" {parameter.unit}" if parameter.unit else "",
        absent=FeatureValue(name=parameter.name, value=None, unit=parameter.unit),
        tail="." + caveat,
        no_observation_reason=reason,
        no_observation_line=Contribution(parameter.name, 0.0, f"not scored: {reason}.{caveat}"),
    )


class RuleScorer:
    """Scores one rule set; a `scoring.port.Scorer`."""

    def __init__(
        self, rule_set: RuleSet, content_hash: str, matcher: BandMatcher, *, lookback: timedelta = DEFAULT_LOOKBACK
    ) -> None:
        if lookback <= timedelta(0):
            raise ValueError("the look-back must be a positive duration")
        self.rule_set = rule_set
        self.content_hash = content_hash
        self.lookback = lookback
        self._matcher = matcher
        # Read once from the (immutable) rule set: score() runs on every hook call and should stay well under 0.1 ms.
        self._version = f"{rule_set.version}+{content_hash[:12]}"
        self._plans = tuple(_plan(parameter, lookback) for parameter in rule_set.parameters)
        self._condition_kinds = sorted(
            {key for parameter in rule_set.parameters for table in parameter.all_tables for key in table.when}
        )
        # Coded inputs assumed when absent: the same feature every time, so built once.
        self._assumed = {
            kind: FeatureValue(name=kind, value=code) for kind, code in rule_set.assume_when_absent.items()
        }
        # The canonical JSON of those shared features, written once for the input hash.
        shared = [plan.absent for plan in self._plans] + list(self._assumed.values())
        self._known_texts = {id(feature): (feature, feature_text(feature)) for feature in shared}
        members: dict[str, list[Parameter]] = {}
        for parameter in rule_set.parameters:
            members.setdefault(rule_set.criterion_of(parameter), []).append(parameter)
        self._criteria = [
            _Criterion(
                name=name,
                members=tuple(parameter.name for parameter in group),
                determined_by=rule_set.criteria.get(name, Criterion()).determined_by,
                max_points=max(parameter.max_points for parameter in group),
            )
            for name, group in members.items()
        ]
        self._criterion_of = {member: criterion.name for criterion in self._criteria for member in criterion.members}

    @property
    def scorer_id(self) -> str:
        return self.rule_set.id

    @property
    def version(self) -> str:
        return self._version

    def score(self, context: ClinicalContext, as_of: datetime) -> list[RiskOutput]:
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        features: dict[str, FeatureValue] = {}
        conditions = self._conditions(context, as_of, features)
        placed: dict[str, _Placed] = {}
        reasons: dict[str, str] = {}
        for plan in self._plans:
            outcome = self._place(plan, context, as_of, conditions, features)
            if isinstance(outcome, str):
                reasons[plan.parameter.name] = outcome
            else:
                placed[plan.parameter.name] = outcome
        lookups = [Lookup(name, spot.table, spot.value) for name, spot in placed.items()]
        bands = self._matcher.match(lookups)
        return [self._output(as_of, features, placed, bands, reasons)]

    def _conditions(
        self, context: ClinicalContext, as_of: datetime, features: dict[str, FeatureValue]
    ) -> dict[str, str]:
        """The coded inputs that choose tables (e.g. SpO2 scale), observed or assumed when absent."""
        values: dict[str, str] = {}
        for kind in self._condition_kinds:
            observation = observation_in_window(context, kind, as_of, self.lookback)
            if observation is not None and observation.code_value is not None:
                values[kind] = observation.code_value
                features[kind] = feature_of(kind, observation)
            elif kind in self._assumed:
                values[kind] = self.rule_set.assume_when_absent[kind]
                features[kind] = self._assumed[kind]
        return values

    def _place(
        self,
        plan: _Plan,
        context: ClinicalContext,
        as_of: datetime,
        conditions: dict[str, str],
        features: dict[str, FeatureValue],
    ) -> _Placed | str:
        """Where the parameter's value goes, or why it cannot be scored (the reason is said in the explanation)."""
        parameter = plan.parameter
        name = parameter.name
        observation = observation_in_window(context, parameter.kind, as_of, self.lookback)
        if observation is None:
            features[name] = plan.absent
            return plan.no_observation_reason
        chosen = -1
        for index, table in enumerate(plan.tables):
            for key, wanted in table.when:
                if conditions.get(key) != wanted:
                    break
            else:
                chosen = index
                break
        if chosen < 0:
            tables = parameter.all_tables
            needed = sorted({key for table in tables for key in table.when if key not in conditions})
            features[name] = feature_of(name, observation)
            return f"no table applies: needs {', '.join(needed) or 'other inputs'}"
        table = plan.tables[chosen]
        if table.coded:
            features[name] = feature_of(name, observation)
            code = observation.code_value
            if code is None or code not in table.known_codes:
                return "its code is not one the table knows"
            return _Placed(chosen, code, f"{code}{table.label}")
        value = observation.value
        if value is None or not math.isfinite(value):
            features[name] = plan.absent
            return "no finite numeric value"
        features[name] = feature_of(name, observation)
        if observation.unit is not None and observation.unit != parameter.unit:
            return f"unit {observation.unit} is not the canonical {parameter.unit}"
        rounded = round_half_up(value, parameter.precision)
        described = f"{value:g}{plan.unit_text}"
        if rounded != value:
            described += f" (rounded half up to {_format(rounded, parameter.precision)})"
        return _Placed(chosen, rounded, described + table.label)

    def _output(
        self,
        as_of: datetime,
        features: dict[str, FeatureValue],
        placed: dict[str, _Placed],
        bands: dict[str, int],
        reasons: dict[str, str],
    ) -> RiskOutput:
        points: dict[str, int] = {}
        for plan in self._plans:
            name = plan.parameter.name
            spot = placed.get(name)
            if spot is not None:
                points[name] = plan.tables[spot.table].points[bands[name]]
        counted, missing = self._aggregate(points)
        total = sum(counted.values())
        risk = self._risk_band(total, counted)
        explanation = [self._line(plan, placed, bands, points, counted, reasons) for plan in self._plans]
        if not points:
            # Nothing to score from: a zero here would read as "low risk", which nobody measured.
            return RiskOutput(
                scorer_id=self.scorer_id,
                scorer_version=self._version,
                score=None,
                band=NO_DATA_BAND,
                as_of=as_of,
                input_hash=input_hash(features, self._known_texts),
                explanation=tuple(explanation),
                features=dict(features),
                partial=True,
                missing=tuple(missing),
            )
        if missing:
            explanation.insert(
                0,
                Contribution(
                    feature="partial",
                    points=0.0,
                    detail=(
                        f"Partial score: {', '.join(missing)} missing; the band '{risk.band}' is from the available "
                        "points only and may understate the risk."
                    ),
                ),
            )
        return RiskOutput(
            scorer_id=self.scorer_id,
            scorer_version=self._version,
            score=float(total),
            band=risk.band,
            as_of=as_of,
            input_hash=input_hash(features, self._known_texts),
            explanation=tuple(explanation),
            features=dict(features),
            partial=bool(missing),
            missing=tuple(missing),
        )

    def _aggregate(self, points: dict[str, int]) -> tuple[dict[str, int], list[str]]:
        """Points each parameter adds (a criterion counts once, via its first highest parameter) and what is missing."""
        counted: dict[str, int] = {}
        missing: list[str] = []
        for criterion in self._criteria:
            if len(criterion.members) == 1:
                # A parameter of its own: it counts in full, and is missing exactly when it has no points.
                member = criterion.members[0]
                got = points.get(member)
                if got is None:
                    missing.append(member)
                else:
                    counted[member] = got
                continue
            available = [member for member in criterion.members if member in points]
            for member in available:
                counted[member] = 0
            best = max(available, key=points.__getitem__, default=None)
            if best is not None:
                counted[best] = points[best]
            if criterion.determined_by == "any":
                determined = bool(available)
            else:
                reached = best is not None and points[best] >= criterion.max_points
                determined = reached or len(available) == len(criterion.members)
            if not determined:
                missing.extend(member for member in criterion.members if member not in points)
        return counted, missing

    def _risk_band(self, total: int, counted: dict[str, int]) -> RiskBand:
        for risk in self.rule_set.risk_bands:
            if risk.min_score is not None and total < risk.min_score:
                continue
            if risk.any_single_points is not None and not any(
                value >= risk.any_single_points for value in counted.values()
            ):
                continue
            return risk
        return self.rule_set.risk_bands[-1]  # unreachable: the last band is unconditional (checked on load)

    def _line(
        self,
        plan: _Plan,
        placed: dict[str, _Placed],
        bands: dict[str, int],
        points: dict[str, int],
        counted: dict[str, int],
        reasons: dict[str, str],
    ) -> Contribution:
        name = plan.parameter.name
        spot = placed.get(name)
        if spot is None:
            reason = reasons[name]
            if reason is plan.no_observation_reason:
                return plan.no_observation_line
            return Contribution(name, 0.0, f"not scored: {reason}{plan.tail}")
        detail = spot.described + plan.tables[spot.table].verdicts[bands[name]]
        adds = counted[name]
        if adds != points[name]:
            detail += f"; criterion '{self._criterion_of[name]}' is counted once, through another parameter"
        return Contribution(name, float(adds), detail + plan.tail)
