"""FHIR dates and times become UTC; partial and zone-less values follow the documented decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clinical.fhir_time import parse_fhir_datetime, years_between


def test_an_offset_datetime_is_converted_to_utc() -> None:
    assert parse_fhir_datetime("2013-04-04T13:27:00+01:00") == datetime(2013, 4, 4, 12, 27, tzinfo=UTC)


def test_a_date_without_zone_is_read_as_utc_midnight() -> None:
    assert parse_fhir_datetime("2016-03-28") == datetime(2016, 3, 28, tzinfo=UTC)


def test_a_partial_date_means_the_start_of_the_period() -> None:
    assert parse_fhir_datetime("2013-04") == datetime(2013, 4, 1, tzinfo=UTC)
    assert parse_fhir_datetime("2013") == datetime(2013, 1, 1, tzinfo=UTC)


def test_nanosecond_fractions_are_cut_to_microseconds() -> None:
    parsed = parse_fhir_datetime("2015-02-07T13:28:17.239123456+02:00")
    assert parsed == datetime(2015, 2, 7, 11, 28, 17, 239123, tzinfo=UTC)


def test_impossible_or_foreign_values_are_not_times() -> None:
    for value in ("2013-02-30", "yesterday", "", "0001-01-01T00:00:00+01:00", 20130101, None, ["2013"]):
        assert parse_fhir_datetime(value) is None


def test_age_is_counted_in_mean_gregorian_years() -> None:
    born = datetime(1974, 12, 25, tzinfo=UTC)
    assert years_between(born, datetime(2024, 12, 25, tzinfo=UTC)) == pytest.approx(50.0, abs=0.01)
    assert years_between(born, datetime(1970, 1, 1, tzinfo=UTC)) is None
