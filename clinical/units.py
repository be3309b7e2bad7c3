"""UCUM unit resolution and conversion into each kind's canonical unit, with every factor computed once and cached.

Parsing and dimensional analysis are delegated to ucumvert (UCUM grammar) and pint (conversion); the per-observation
path only does a dictionary lookup and one multiply-add, because each (from, to, kind) pair is cached.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from clinical.codes import BY_KIND
from clinical.model import ExclusionReason

UCUM_SYSTEM = "http://unitsofmeasure.org"
SNOMED_SYSTEM = "http://snomed.info/sct"

# Units coded outside UCUM are accepted only when the code is unambiguous. Each entry was checked against a real
# example (the FHIR R4 examples f203/f204 carry these SNOMED unit codes with the displays "mmol/L" and "umol/L").
_NON_UCUM_UNITS: dict[tuple[str, str], str] = {
    (SNOMED_SYSTEM, "258813002"): "mmol/L",
    (SNOMED_SYSTEM, "258814008"): "umol/L",
}

# Human-readable unit strings sent without a UCUM code. Only spellings that cannot mean anything else are listed;
# anything else must parse as UCUM *and* be dimensionally convertible, so "C" (coulomb) can never pass as Celsius.
_UNIT_TEXT_ALIASES: dict[str, str] = {
    "mmhg": "mm[Hg]",
    "mm hg": "mm[Hg]",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "in": "[in_i]",
    "inch": "[in_i]",
    "inches": "[in_i]",
    "°c": "Cel",
    "degrees c": "Cel",
    "deg c": "Cel",
    "°f": "[degF]",
    "degrees f": "[degF]",
    "deg f": "[degF]",
    "k/ul": "10*3/uL",
    "k/µl": "10*3/uL",
    "bpm": "/min",
    "beats/min": "/min",
    "beats/minute": "/min",
    "breaths/min": "/min",
    "breaths/minute": "/min",
}

_ANNOTATION = re.compile(r"\{[^}]*\}")
# UCUM writes micro as "u"; laboratory systems often send the micro sign (U+00B5) or Greek mu (U+03BC).
_MICRO = str.maketrans({"\u00b5": "u", "\u03bc": "u"})


class UnitConversionError(ValueError):
    """A unit that cannot be parsed as UCUM or cannot be converted into the requested unit."""


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: ExclusionReason
    message: str


def normalise_ucum(code: str) -> str:
    """The UCUM code with micro signs spelled "u" and surrounding blanks removed."""
    return code.strip().translate(_MICRO)


def convert(value: float, from_unit: str, to_unit: str, kind: str | None = None) -> float:
    """Convert `value` between UCUM units; `kind` supplies the molar mass for mass <-> substance conversions."""
    scale, offset = conversion(from_unit, to_unit, kind)
    return value * scale + offset


def conversion(from_unit: str, to_unit: str, kind: str | None = None) -> tuple[float, float]:
    """(scale, offset) so that `to = from * scale + offset`; raises UnitConversionError."""
    result = _cached_conversion(from_unit, to_unit, kind)
    if isinstance(result, _Failure):
        raise UnitConversionError(result.message)
    return result


@lru_cache(maxsize=4096)
def _cached_conversion(from_unit: str, to_unit: str, kind: str | None) -> tuple[float, float] | _Failure:
    # Failures are cached too so that a stream of one bad unit costs the parser once. The raw strings are the
    # cache key, so the normalisation below also runs once per distinct spelling.
    from_unit, to_unit = normalise_ucum(from_unit), normalise_ucum(to_unit)
    if from_unit == to_unit:
        return (1.0, 0.0)
    try:
        src_mag, src_units = _parse(from_unit)
        dst_mag, dst_units = _parse(to_unit)
    except UnitConversionError as exc:
        return _Failure(ExclusionReason.UNKNOWN_UNIT, str(exc))
    registry = _registry()
    molar_mass = BY_KIND[kind].molar_mass if kind in BY_KIND else None

    def at(value: float) -> float:
        quantity = registry.Quantity(value * src_mag, src_units)
        try:
            return float(quantity.to(dst_units).magnitude) / dst_mag
        except Exception as exc:  # pint raises DimensionalityError and OffsetUnitCalculusError here.
            if molar_mass is None:
                raise UnitConversionError(f"cannot convert {from_unit!r} to {to_unit!r}") from exc
            per_mole = registry.Quantity(molar_mass, "g/mol")
            # Mass concentration -> substance concentration divides by the molar mass; the reverse multiplies.
            # Each product is formed inside the try: for an offset unit (Cel) pint refuses the product itself.
            for towards in (operator.truediv, operator.mul):
                try:
                    return float(towards(quantity, per_mole).to(dst_units).magnitude) / dst_mag
                except Exception:  # noqa: S112 - trying the other direction; both failing is reported below.
                    continue
            raise UnitConversionError(
                f"cannot convert {from_unit!r} to {to_unit!r} with the molar mass of {kind}"
            ) from exc

    try:
        offset = at(0.0)
        # For offset units (degF -> Cel) a wide probe keeps the slope exact to the last few bits.
        scale = at(1.0) if offset == 0.0 else (at(1000.0) - offset) / 1000.0
    except UnitConversionError as exc:
        return _Failure(ExclusionReason.UNCONVERTIBLE_UNIT, str(exc))
    if not (math.isfinite(scale) and math.isfinite(offset)) or scale == 0.0:
        return _Failure(ExclusionReason.UNCONVERTIBLE_UNIT, f"degenerate conversion from {from_unit!r} to {to_unit!r}")
    return (scale, offset)


def _parse(code: str) -> tuple[float, Any]:
    """(magnitude, pint units) of a UCUM expression; annotations such as {beats} are unit 1, as UCUM says."""
    registry = _registry()
    bare = _ANNOTATION.sub("", code)
    if bare in ("", "1"):
        return 1.0, registry.dimensionless
    try:
        quantity = registry.from_ucum(bare)
        return float(quantity.magnitude), quantity.units
    except Exception as exc:  # ucumvert raises several lark and pint error types for unknown units.
        raise UnitConversionError(f"{code!r} is not a UCUM unit this service understands") from exc


@lru_cache(maxsize=1)
def _registry() -> Any:
    # Loaded lazily: building the UCUM registry takes about a second, and many processes never convert a unit.
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


def resolve_unit(quantity: Mapping[str, object], canonical: str) -> tuple[str | None, ExclusionReason | None]:
    """The UCUM code a FHIR Quantity is expressed in, or why it cannot be trusted.

    A coded unit is used when its system is UCUM or it is one of the few unambiguous non-UCUM codes. A Quantity
    that has only a human-readable `unit` is accepted when that text is a known spelling or valid UCUM; the
    dimensional check in `to_canonical` then rejects misreadings.
    """
    system = quantity.get("system")
    code = quantity.get("code")
    text = quantity.get("unit")
    if isinstance(system, str):
        if not isinstance(code, str):
            return None, ExclusionReason.UNKNOWN_UNIT
        if system == UCUM_SYSTEM:
            return code, None
        mapped = _NON_UCUM_UNITS.get((system, code.strip()))
        return (mapped, None) if mapped else (None, ExclusionReason.NON_UCUM_UNIT)
    for candidate in (code, text):
        if isinstance(candidate, str) and candidate.strip():
            return _UNIT_TEXT_ALIASES.get(candidate.strip().lower(), candidate), None
    if _is_dimensionless(canonical):
        return canonical, None
    return None, ExclusionReason.UNKNOWN_UNIT


def to_canonical(value: float, unit: str, canonical: str, kind: str) -> float | ExclusionReason:
    """`value` in the kind's canonical unit, or the reason it cannot be converted."""
    if unit == canonical:
        return value
    result = _cached_conversion(unit, canonical, kind)
    if isinstance(result, _Failure):
        return result.reason
    return value * result[0] + result[1]


# Units EHRs commonly send instead of the canonical one, per kind; converted once at start-up by `warm_up`.
_COMMON_SOURCE_UNITS: dict[str, tuple[str, ...]] = {
    "temperature": ("[degF]",),
    "body_weight": ("[lb_av]", "g", "[oz_av]"),
    "body_height": ("[in_i]", "m", "[ft_i]"),
    "glucose": ("mmol/L",),
    "lactate": ("mg/dL",),
    "creatinine": ("umol/L",),
    "bun": ("mmol/L",),
    "calcium": ("mmol/L",),
    "magnesium": ("mmol/L",),
    "phosphate": ("mmol/L",),
    "bilirubin_total": ("umol/L",),
    "bilirubin_direct": ("umol/L",),
    "hgb": ("g/L",),
    "wbc": ("10*9/L",),
    "platelets": ("10*9/L",),
    "heart_rate": ("{beats}/min",),
    "resp_rate": ("{breaths}/min",),
    "fio2": ("1",),
}


def warm_up() -> int:
    """Build the UCUM registry and the common conversions now, at start-up, so that no hook call pays for them.

    Returns how many conversions are ready. A service calls this once before it takes traffic.
    """
    ready = 0
    for kind, units in _COMMON_SOURCE_UNITS.items():
        canonical = BY_KIND[kind].unit
        for unit in units:
            ready += not isinstance(_cached_conversion(unit, canonical, kind), _Failure)
    return ready


def _is_dimensionless(unit: str) -> bool:
    return _ANNOTATION.sub("", unit) in ("", "1")
