"""The log stream: JSON lines at the configured level, never a value under a PHI key."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cdsctl.logs import configure_logging, get_logger


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    yield buffer
    configure_logging("WARNING")
    logging.getLogger().handlers[:] = []


def test_events_below_the_level_are_dropped_and_the_rest_are_json_lines(stream: io.StringIO) -> None:
    configure_logging("WARNING", stream=stream)
    log = get_logger("tests.logs")

    log.info("hook.handled", service="s")
    log.warning("hook.deadline_exceeded", service="s", at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC), budget=Decimal("1.5"))

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["hook.deadline_exceeded"]
    assert lines[0]["level"] == "warning"
    assert lines[0]["at"] == "2026-01-02T03:04:00+00:00"
    assert lines[0]["budget"] == "1.5"  # what JSON cannot hold is written as text


def test_values_under_phi_keys_are_never_written(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=stream)

    get_logger("tests.logs").info("patient.seen", name="Alice Example", MRN="12345", cards=2)

    written = stream.getvalue()
    assert "Alice" not in written and "12345" not in written
    line = json.loads(written)
    assert line["name"] == line["MRN"] == "[redacted]"
    assert line["cards"] == 2
