"""The JSON-ready copies the store writes: every mapping a plain dict, every sequence a list, leaves untouched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from store.documents import plain_json
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
