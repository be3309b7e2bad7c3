"""Unit conversion into canonical units: published factors, non-UCUM codes and the refusal to guess."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinical.model import ExclusionReason
from clinical.units import UnitConversionError, convert, resolve_unit, to_canonical
from tests.strategies import CONVERTIBLE_PAIRS


def test_fahrenheit_converts_to_celsius_exactly() -> None:
    assert convert(98.6, "[degF]", "Cel") == pytest.approx(37.0, rel=1e-12)
    assert convert(32.0, "[degF]", "Cel") == pytest.approx(0.0, abs=1e-12)
    assert convert(212.0, "[degF]", "Cel") == pytest.approx(100.0, rel=1e-12)


def test_pound_is_0_45359237_kilogram() -> None:
    assert convert(1.0, "[lb_av]", "kg") == pytest.approx(0.45359237, rel=1e-12)


def test_inch_is_2_54_centimetres() -> None:
    assert convert(1.0, "[in_i]", "cm") == pytest.approx(2.54, rel=1e-12)


def test_grams_convert_to_kilograms() -> None:
    assert convert(2500.0, "g", "kg") == pytest.approx(2.5, rel=1e-12)


def test_glucose_180_156_mg_per_dl_is_10_mmol_per_l() -> None:
    assert convert(180.156, "mg/dL", "mmol/L", "glucose") == pytest.approx(10.0, rel=1e-12)


def test_creatinine_1_mg_per_dl_is_88_4_umol_per_l() -> None:
    assert convert(1.0, "mg/dL", "umol/L", "creatinine") == pytest.approx(88.4, rel=1e-3)
    assert convert(88.4, "µmol/L", "mg/dL", "creatinine") == pytest.approx(1.0, rel=1e-3)


def test_urea_1_mmol_per_l_is_2_8_mg_per_dl_of_urea_nitrogen() -> None:
    assert convert(1.0, "mmol/L", "mg/dL", "bun") == pytest.approx(2.80134, rel=1e-9)


def test_lactate_mg_per_dl_converts_with_its_molar_mass() -> None:
    assert convert(9.008, "mg/dL", "mmol/L", "lactate") == pytest.approx(1.0, rel=1e-9)


def test_hemoglobin_g_per_l_is_a_tenth_of_g_per_dl() -> None:
    assert convert(120.0, "g/L", "g/dL") == pytest.approx(12.0, rel=1e-12)


def test_thousands_per_microlitre_equal_billions_per_litre() -> None:
    assert convert(7.5, "10*3/uL", "10*9/L") == pytest.approx(7.5, rel=1e-12)


def test_annotated_per_minute_is_per_minute() -> None:
    assert convert(72.0, "{beats}/min", "/min") == 72.0


def test_ph_converts_only_to_itself() -> None:
    assert convert(7.4, "[pH]", "[pH]") == 7.4


def test_mass_to_substance_without_a_molar_mass_is_refused() -> None:
    with pytest.raises(UnitConversionError):
        convert(100.0, "mg/dL", "mmol/L")


@pytest.mark.parametrize(("unit", "kind", "canonical"), [("Cel", "lactate", "mmol/L"), ("[degF]", "glucose", "mg/dL")])
def test_a_temperature_unit_on_a_substance_is_unconvertible_not_an_error(unit: str, kind: str, canonical: str) -> None:
    # The molar-mass fallback multiplies the quantity; pint refuses any product of an offset unit.
    with pytest.raises(UnitConversionError):
        convert(2.0, unit, canonical, kind)
    assert to_canonical(2.0, unit, canonical, kind) is ExclusionReason.UNCONVERTIBLE_UNIT


def test_coulomb_is_never_read_as_celsius() -> None:
    with pytest.raises(UnitConversionError):
        convert(37.0, "C", "Cel")
    assert to_canonical(37.0, "C", "Cel", "temperature") is ExclusionReason.UNCONVERTIBLE_UNIT


def test_an_unknown_unit_is_reported_as_unknown() -> None:
    assert to_canonical(1.0, "furlongs", "cm", "body_height") is ExclusionReason.UNKNOWN_UNIT


def test_snomed_coded_mmol_per_l_is_recognised() -> None:
    quantity = {"value": 28, "unit": "mmol/L", "system": "http://snomed.info/sct", "code": "258813002"}
    assert resolve_unit(quantity, "mmol/L") == ("mmol/L", None)


def test_an_unknown_snomed_unit_code_is_excluded_as_non_ucum() -> None:
    quantity = {"value": 1, "unit": "kg", "system": "http://snomed.info/sct", "code": "123456789"}
    assert resolve_unit(quantity, "kg") == (None, ExclusionReason.NON_UCUM_UNIT)


def test_iso_11073_units_are_excluded_as_non_ucum() -> None:
    quantity = {"value": 820, "unit": "cL/s", "system": "urn:iso:std:iso:11073:10101", "code": "265201"}
    assert resolve_unit(quantity, "L/min") == (None, ExclusionReason.NON_UCUM_UNIT)


def test_a_readable_unit_without_a_code_is_accepted_when_unambiguous() -> None:
    assert resolve_unit({"value": 120, "unit": "mm Hg"}, "mm[Hg]") == ("mm[Hg]", None)
    assert resolve_unit({"value": 185, "unit": "lbs"}, "kg") == ("[lb_av]", None)


def test_a_dimensionless_score_needs_no_unit() -> None:
    assert resolve_unit({"value": 13}, "{score}") == ("{score}", None)
    assert resolve_unit({"value": 80}, "/min") == (None, ExclusionReason.UNKNOWN_UNIT)


# No deadline: the first example loads the UCUM registry (about a second).
@settings(deadline=None)
@given(
    pair=st.sampled_from(CONVERTIBLE_PAIRS),
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
def test_conversions_round_trip_within_1e_9(pair: tuple[str, str, str | None], value: float) -> None:
    source, target, kind = pair
    back = convert(convert(value, source, target, kind), target, source, kind)
    assert back == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_warm_up_prepares_every_common_conversion_before_traffic_arrives() -> None:
    from clinical.units import _COMMON_SOURCE_UNITS, warm_up

    expected = sum(len(units) for units in _COMMON_SOURCE_UNITS.values())

    assert warm_up() == expected
