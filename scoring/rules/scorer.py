"""A rule scorer: one validated rule set (NEWS2, qSOFA, SIRS, ...) behind the `Scorer` port.

It gathers inputs inside the look-back, rounds them by the rule set's stated rule, asks the band matcher for each
parameter's band, adds the points up criterion by criterion and picks the first risk band that holds. Missing
inputs give a partial score, marked as such and explained, never a silent zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from clinical.model import ClinicalContext
from scoring.port import NO_DATA_BAND, Contribution, FeatureValue, RiskOutput
from scoring.rules.inputs import DEFAULT_LOOKBACK, feature_of, input_hash, observation_in_window
from scoring.rules.matcher import BandMatcher, Lookup
from scoring.rules.rounding import round_half_up
from scoring.rules.schema import Band, Criterion, Parameter, RiskBand, RuleSet


@dataclass(frozen=True, slots=True)
class _Placed:
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
        # Read once from the (immutable) rule set: score() runs on every hook call and should stay well under 1 ms.
        self._tables = {parameter.name: parameter.all_tables for parameter in rule_set.parameters}
        self._condition_kinds = sorted(
            {key for tables in self._tables.values() for table in tables for key in table.when}
        )
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
        return f"{self.rule_set.version}+{self.content_hash[:12]}"

    def score(self, context: ClinicalContext, as_of: datetime) -> list[RiskOutput]:
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        features: dict[str, FeatureValue] = {}
        conditions = self._conditions(context, as_of, features)
        placed: dict[str, _Placed] = {}
        reasons: dict[str, str] = {}
        for parameter in self.rule_set.parameters:
            outcome = self._place(parameter, context, as_of, conditions, features)
            if isinstance(outcome, str):
                reasons[parameter.name] = outcome
            else:
                placed[parameter.name] = outcome
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
            elif kind in self.rule_set.assume_when_absent:
                values[kind] = self.rule_set.assume_when_absent[kind]
                features[kind] = FeatureValue(name=kind, value=values[kind])
        return values

    def _place(
        self,
        parameter: Parameter,
        context: ClinicalContext,
        as_of: datetime,
        conditions: dict[str, str],
        features: dict[str, FeatureValue],
    ) -> _Placed | str:
        """Where the parameter's value goes, or why it cannot be scored (the reason is said in the explanation)."""
        observation = observation_in_window(context, parameter.kind, as_of, self.lookback)
        if observation is None:
            features[parameter.name] = FeatureValue(name=parameter.name, value=None, unit=parameter.unit)
            hours = self.lookback.total_seconds() / 3600
            return f"no usable observation in the {hours:g} h before as_of"
        feature = feature_of(parameter.name, observation)
        tables = self._tables[parameter.name]
        chosen = next(
            (
                index
                for index, table in enumerate(tables)
                if all(conditions.get(key) == code for key, code in table.when.items())
            ),
            None,
        )
        if chosen is None:
            needed = sorted({key for table in tables for key in table.when if key not in conditions})
            features[parameter.name] = feature
            return f"no table applies: needs {', '.join(needed) or 'other inputs'}"
        label = "" if parameter.tables is None else f" ({tables[chosen].label})"
        if tables[chosen].coded:
            features[parameter.name] = feature
            code = observation.code_value
            known = {known_code for band in tables[chosen].bands for known_code in band.codes or []}
            if code is None or code not in known:
                return "its code is not one the table knows"
            return _Placed(chosen, code, f"{code}{label}")
        value = observation.value
        if value is None or not math.isfinite(value):
            features[parameter.name] = FeatureValue(name=parameter.name, value=None, unit=parameter.unit)
            return "no finite numeric value"
        features[parameter.name] = feature
        if observation.unit is not None and observation.unit != parameter.unit:
            return f"unit {observation.unit} is not the canonical {parameter.unit}"
        rounded = round_half_up(value, parameter.precision)
        unit = f" {parameter.unit}" if parameter.unit else ""
        described = f"{value:g}{unit}"
        if rounded != value:
            described += f" (rounded half up to {_format(rounded, parameter.precision)})"
        return _Placed(chosen, rounded, described + label)

    def _output(
        self,
        as_of: datetime,
        features: dict[str, FeatureValue],
        placed: dict[str, _Placed],
        bands: dict[str, int],
        reasons: dict[str, str],
    ) -> RiskOutput:
        points: dict[str, int] = {}
        for parameter in self.rule_set.parameters:
            if parameter.name in placed:
                table = self._tables[parameter.name][placed[parameter.name].table]
                points[parameter.name] = table.bands[bands[parameter.name]].points
        counted, missing = self._aggregate(points)
        total = sum(counted.values())
        risk = self._risk_band(total, counted)
        explanation = [
            self._line(parameter, placed, bands, points, counted, reasons) for parameter in self.rule_set.parameters
        ]
        if not points:
            # Nothing to score from: a zero here would read as "low risk", which nobody measured.
            return RiskOutput(
                scorer_id=self.scorer_id,
                scorer_version=self.version,
                score=None,
                band=NO_DATA_BAND,
                as_of=as_of,
                input_hash=input_hash(features),
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
            scorer_version=self.version,
            score=float(total),
            band=risk.band,
            as_of=as_of,
            input_hash=input_hash(features),
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
        parameter: Parameter,
        placed: dict[str, _Placed],
        bands: dict[str, int],
        points: dict[str, int],
        counted: dict[str, int],
        reasons: dict[str, str],
    ) -> Contribution:
        caveat = f" Note: {parameter.caveat}" if parameter.caveat else ""
        if parameter.name not in placed:
            return Contribution(parameter.name, 0.0, f"not scored: {reasons[parameter.name]}.{caveat}")
        spot = placed[parameter.name]
        table = self._tables[parameter.name][spot.table]
        band = _band_text(table.bands[bands[parameter.name]], parameter.precision)
        scored = points[parameter.name]
        detail = f"{spot.described} is in band {band}: {scored} point{'' if scored == 1 else 's'}"
        adds = counted[parameter.name]
        if adds != scored:
            criterion = self._criterion_of[parameter.name]
            detail += f"; criterion '{criterion}' is counted once, through another parameter"
        return Contribution(parameter.name, float(adds), detail + "." + caveat)
