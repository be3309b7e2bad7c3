"""The JSON-ready copies the store writes: every mapping a plain dict, every sequence a list, leaves untouched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import orjson

from clinical.model import Provenance
from scoring.port import Contribution, FeatureValue, RiskOutput
from store.columns import document_text
from store.documents import explanation_document, features_document, plain_json
from store.policy_state import _encode


class _Colour(StrEnum):
    RED = "red"


@dataclass(frozen=True)
class _Inner:
    at: datetime
    colour: _Colour
    tags: tuple[str, ...]


@dataclass(frozen=True)
class _Outer:
    inner: _Inner
    extra: Any


T0 = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def test_plain_json_copies_mappings_and_sequences_into_dicts_and_lists() -> None:
    value = MappingProxyType({"a": (1, 2.5, None, True), 3: {"b": ("x",)}, _Colour.RED: "s"})
    copied = plain_json(value)
    assert copied == {"a": [1, 2.5, None, True], "3": {"b": ["x"]}, "red": "s"}
    assert type(copied) is dict and type(copied["a"]) is list and type(copied["3"]["b"]) is list
    assert all(type(key) is str for key in copied)


def test_plain_json_leaves_what_it_does_not_know_as_it_is() -> None:
    marker = object()
    assert plain_json([marker, T0])[0] is marker
    assert plain_json({"at": T0}) == {"at": T0}


def test_an_event_document_is_json_ready_in_one_walk() -> None:
    """As plain_json over the field-by-field encoding: times in UTC text, enums by value, mappings plain dicts."""
    event = _Outer(
        inner=_Inner(at=T0.astimezone(timezone(timedelta(hours=2))), colour=_Colour.RED, tags=("a", "b")),
        extra=MappingProxyType({"k": ({"n": (1,)},), 7: "seven"}),
    )
    document = _encode(event)
    assert document == {
        "inner": {"at": "2026-03-01T08:30:00+00:00", "colour": "red", "tags": ["a", "b"]},
        "extra": {"k": [{"n": [1]}], "7": "seven"},
    }
    assert type(document["extra"]) is dict and type(document["extra"]["k"][0]["n"]) is list
    assert type(document["inner"]["colour"]) is str


def test_a_risk_outputs_documents_are_stored_field_by_field_with_utc_times() -> None:
    """The features and explanation documents are the scorer's own values, written by the document codec: the stored
    text must keep its shape (readers and audits depend on it), a missing input's fields as nulls."""
    observed = datetime(2026, 3, 1, 8, 30, 15, 250000, tzinfo=UTC)
    output = RiskOutput(
        scorer_id="news2",
        scorer_version="1",
        score=5.0,
        band="medium",
        as_of=T0,
        input_hash="h",
        explanation=(Contribution("respiratory_rate", 2.0, "24 /min"),),
        features={
            "respiratory_rate": FeatureValue(
                "respiratory_rate", 24.0, "/min", observed, Provenance("Observation", "o1", "3", "https://ehr/fhir")
            ),
            "spo2": FeatureValue("spo2", None),
        },
    )
    assert orjson.loads(document_text(features_document(output))) == {
        "respiratory_rate": {
            "name": "respiratory_rate",
            "value": 24.0,
            "unit": "/min",
            "observed_utc": "2026-03-01T08:30:15.250000+00:00",
            "provenance": {
                "resource_type": "Observation",
                "resource_id": "o1",
                "version_id": "3",
                "source_system": "https://ehr/fhir",
            },
        },
        "spo2": {"name": "spo2", "value": None, "unit": None, "observed_utc": None, "provenance": None},
    }
    assert orjson.loads(document_text(explanation_document(output))) == [
        {"feature": "respiratory_rate", "points": 2.0, "detail": "24 /min"}
    ]
