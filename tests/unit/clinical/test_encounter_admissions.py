"""When the patient reached the current unit, from an Encounter's location periods: the ICU admission the sepsis
model counts its hours from, told apart from the hospital admission (the encounter's own start)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clinical.model import UnitType
from clinical.normalise import normalise_prefetch


def encounter(locations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "period": {"start": "2024-12-20T08:00:00Z"},
        "location": locations,
    }


def stay(display: str, start: str, end: str | None = None, status: str = "active") -> dict[str, Any]:
    period = {"start": start} | ({"end": end} if end else {})
    return {"location": {"display": display}, "status": status, "period": period}


def unit_start(locations: list[dict[str, Any]]) -> datetime | None:
    context = normalise_prefetch({"encounter": encounter(locations)}, salt="test")
    assert context.encounter is not None
    return context.encounter.unit_start_utc


def test_a_bed_move_inside_the_icu_keeps_the_icu_admission_time() -> None:
    locations = [
        stay("Ward 7", "2024-12-20T08:00:00Z", "2024-12-22T03:00:00Z", status="completed"),
        stay("MICU bed 2", "2024-12-22T03:00:00Z", "2024-12-23T10:00:00Z", status="completed"),
        stay("MICU bed 5", "2024-12-23T10:00:00Z"),
    ]
    context = normalise_prefetch({"encounter": encounter(locations)}, salt="test")
    assert context.encounter is not None
    assert context.encounter.unit_type is UnitType.ICU
    assert context.encounter.unit_start_utc == datetime(2024, 12, 22, 3, 0, tzinfo=UTC)
    assert context.encounter.start_utc == datetime(2024, 12, 20, 8, 0, tzinfo=UTC)


def test_a_return_to_the_icu_counts_from_the_latest_arrival() -> None:
    locations = [
        stay("MICU bed 2", "2024-12-20T08:00:00Z", "2024-12-21T08:00:00Z", status="completed"),
        stay("Ward 7", "2024-12-21T08:00:00Z", "2024-12-24T00:00:00Z", status="completed"),
        stay("SICU bed 1", "2024-12-24T00:00:00+01:00"),
    ]
    assert unit_start(locations) == datetime(2024, 12, 23, 23, 0, tzinfo=UTC)


def test_planned_and_reserved_beds_are_not_arrivals() -> None:
    locations = [
        stay("Ward 7", "2024-12-20T08:00:00Z", "2024-12-22T03:00:00Z", status="completed"),
        stay("MICU bed 2", "2024-12-22T03:00:00Z"),
        stay("MICU bed 9", "2024-12-26T00:00:00Z", status="planned"),
    ]
    assert unit_start(locations) == datetime(2024, 12, 22, 3, 0, tzinfo=UTC)


def test_without_location_periods_the_unit_arrival_is_unknown() -> None:
    assert unit_start([{"location": {"display": "MICU bed 2"}, "status": "active"}]) is None
    assert unit_start([]) is None
