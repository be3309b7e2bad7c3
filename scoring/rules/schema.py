"""The shape of a rule-set file (YAML under `scoring/rulesets/`), validated with pydantic when it is loaded.

A band table is written the way a chart prints it: closed ranges at the table's printed precision
(`{min: 9, max: 11, points: 1}`), the lowest band without `min` and the highest without `max`. Because every
value is rounded to that precision before it is looked up, the table covers the whole number line exactly when
each band starts one step after the previous one ends; anything else is refused here, naming the band.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from clinical.codes import BY_KIND, OXYGEN_THERAPY_KIND, SPO2_SCALE2_KIND

# Coded kinds carry their answer in `Observation.code_value`; a rule set may score them or choose tables by them.
CODED_KINDS: frozenset[str] = frozenset({"consciousness", OXYGEN_THERAPY_KIND, SPO2_SCALE2_KIND})


class _Strict(BaseModel):
    # A misspelt field in a hand-edited file must be refused, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _decimal(value: float) -> Decimal:
    # Through str() so that 35.1 is the decimal the author wrote, not its binary approximation.
    return Decimal(str(value))


class Band(_Strict):
    """One row of a table: a closed numeric range (`min`/`max`, either may be left open) or a list of `codes`."""

    min: float | None = None
    max: float | None = None
    codes: list[str] | None = Field(default=None, min_length=1)
    points: int = Field(ge=0)

    @model_validator(mode="after")
    def _one_form(self) -> Band:
        if self.codes is not None and (self.min is not None or self.max is not None):
            raise ValueError("a band has either `codes` or `min`/`max`, not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Table(_Strict):
    """One band table; `when` names the coded inputs that select it (empty: always)."""

    label: str = "default"
    when: dict[str, str] = Field(default_factory=dict)
    bands: list[Band] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_form_per_table(self) -> Table:
        coded = self.coded
        for index, band in enumerate(self.bands):
            if (band.codes is not None) != coded:
                raise ValueError(f"bands[{index}] mixes coded and numeric bands in one table")
        return self

    @property
    def coded(self) -> bool:
        return self.bands[0].codes is not None

    @property
    def max_points(self) -> int:
        return max(band.points for band in self.bands)


def _check_numeric_coverage(bands: list[Band], precision: int) -> None:
    step = Decimal(1).scaleb(-precision)
    for index, band in enumerate(bands):
        for name in ("min", "max"):
            bound = getattr(band, name)
            if bound is not None and _decimal(bound) != _decimal(bound).quantize(step):
                raise ValueError(f"bands[{index}].{name} ({bound}) has more decimals than the precision ({precision})")
    if bands[0].min is not None:
        raise ValueError("bands[0] has a min: the lowest band must be open below (leave min out) to cover every value")
    if bands[-1].max is not None:
        last = len(bands) - 1
        raise ValueError(f"bands[{last}] has a max: the highest band must be open above (leave max out)")
    for index in range(1, len(bands)):
        before, band = bands[index - 1], bands[index]
        if before.max is None or band.min is None:
            raise ValueError(
                f"bands[{index - 1}] and bands[{index}] overlap: only the first band may omit min "
                "and only the last may omit max"
            )
        end, start = _decimal(before.max).quantize(step), _decimal(band.min).quantize(step)
        expected = end + step
        if start != expected:
            problem = f"gap between bands[{index - 1}]" if start > expected else f"bands[{index - 1}]"
            clash = "" if start > expected else " overlap"
            raise ValueError(
                f"{problem} (max {end}) and bands[{index}] (min {start}){clash}: bands[{index}].min must be {expected}"
            )


def _check_coded_bands(bands: list[Band]) -> None:
    seen: dict[str, int] = {}
    for index, band in enumerate(bands):
        for code in band.codes or []:
            if code in seen:
                raise ValueError(f"code {code!r} is in both bands[{seen[code]}] and bands[{index}]")
            seen[code] = index


class Parameter(_Strict):
    """One scored input: a kind from clinical/codes.py (or a coded kind) and its band table(s)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: str
    unit: str | None = None
    # Decimals of the printed table: values are rounded half up to this before lookup.
    precision: int = Field(default=0, ge=0, le=6)
    description: str = ""
    # Said in this parameter's explanation line whenever it is scored: a known limit of the input.
    caveat: str = ""
    # Parameters sharing a criterion count once, with the highest points among them (SIRS, qSOFA).
    criterion: str | None = None
    bands: list[Band] | None = None
    tables: list[Table] | None = None
    # `bands` is shorthand for one unconditional table; built once here, as scorers ask for it on every call.
    _tables: list[Table] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _one_table_form_and_full_coverage(self) -> Parameter:
        if (self.bands is None) == (self.tables is None):
            raise ValueError("give exactly one of `bands` (a single table) or `tables` (tables chosen by `when`)")
        self._tables = self.tables if self.tables is not None else [Table(bands=self.bands or [])]
        coded = self.kind in CODED_KINDS
        if not coded and self.kind not in BY_KIND:
            raise ValueError(
                f"kind {self.kind!r} is neither a quantity in clinical/codes.py nor a coded kind "
                f"({', '.join(sorted(CODED_KINDS))})"
            )
        if not coded and self.unit != BY_KIND[self.kind].unit:
            raise ValueError(
                f"unit {self.unit!r} is not the canonical unit of {self.kind} ({BY_KIND[self.kind].unit!r})"
            )
        for position, table in enumerate(self.all_tables):
            where = f"tables[{position}]: " if self.tables is not None else ""
            try:
                if table.coded != coded:
                    expected = "`codes`" if coded else "`min`/`max`"
                    raise ValueError(f"{self.kind} needs bands with {expected}")
                if coded:
                    _check_coded_bands(table.bands)
                else:
                    _check_numeric_coverage(table.bands, self.precision)
                for key in table.when:
                    if key not in CODED_KINDS:
                        raise ValueError(f"`when` key {key!r} is not a coded kind")
            except ValueError as error:
                raise ValueError(f"{where}{error}") from None
        for first in range(len(self.all_tables)):
            for second in range(first + 1, len(self.all_tables)):
                a, b = self.all_tables[first].when, self.all_tables[second].when
                if not any(key in b and a[key] != b[key] for key in a):
                    raise ValueError(
                        f"tables[{first}] and tables[{second}] can both apply: their `when` "
                        "conditions must differ on at least one shared input"
                    )
        return self

    @property
    def all_tables(self) -> list[Table]:
        return self._tables

    @property
    def max_points(self) -> int:
        return max(table.max_points for table in self.all_tables)


class Criterion(_Strict):
    description: str = ""
    # `any`: one available parameter decides the criterion (alternative measures of one thing);
    # `all`: every parameter is needed unless the available ones already reach the criterion's highest points.
    determined_by: Literal["any", "all"] = "all"


class Aggregation(_Strict):
    method: Literal["sum"] = "sum"
    within_criterion: Literal["max"] = "max"


class RiskBand(_Strict):
    """Checked in file order; the first band whose conditions all hold is the result."""

    band: str = Field(min_length=1)
    min_score: int | None = None
    any_single_points: int | None = None
    description: str = ""

    @property
    def unconditional(self) -> bool:
        return self.min_score is None and self.any_single_points is None


class RuleSet(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    title: str
    source: str
    rounding: str = Field(min_length=1, description="The rule for values between printed bands, in words.")
    notes: list[str] = Field(default_factory=list)
    # Coded inputs taken as this value when no observation is found (they choose tables; they are never scored).
    assume_when_absent: dict[str, str] = Field(default_factory=dict)
    criteria: dict[str, Criterion] = Field(default_factory=dict)
    parameters: list[Parameter] = Field(min_length=1)
    aggregation: Aggregation = Field(default_factory=Aggregation)
    risk_bands: list[RiskBand] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        names = [parameter.name for parameter in self.parameters]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"parameter names must be unique; repeated: {', '.join(duplicates)}")
        for parameter in self.parameters:
            if parameter.criterion is not None and parameter.criterion not in self.criteria:
                raise ValueError(
                    f"parameter {parameter.name!r} names criterion {parameter.criterion!r}, "
                    "which is not declared under `criteria`"
                )
        used = {parameter.criterion for parameter in self.parameters}
        for criterion in self.criteria:
            if criterion not in used:
                raise ValueError(f"criterion {criterion!r} is declared but no parameter names it")
            if criterion in names:
                raise ValueError(f"criterion {criterion!r} has the name of a parameter; give it its own name")
        for key in self.assume_when_absent:
            if key not in CODED_KINDS:
                raise ValueError(f"assume_when_absent key {key!r} is not a coded kind")
        bands = [band.band for band in self.risk_bands]
        if len(set(bands)) != len(bands):
            raise ValueError("risk band names must be unique")
        if not self.risk_bands[-1].unconditional:
            raise ValueError("the last risk band must have no conditions, so that every score gets a band")
        return self

    def criterion_of(self, parameter: Parameter) -> str:
        return parameter.criterion or parameter.name
