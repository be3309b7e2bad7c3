"""An audit record's payload is normalised once, and hashes as its entry's raw payload would."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import pytest

from store import audit
from store.port import AuditEntry

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class _Band(StrEnum):
    HIGH = "high"


def test_a_record_hashes_as_its_raw_entry_would() -> None:
    raw = {"whole": 3.0, "ratio": 0.25, "band": _Band.HIGH, "steps": ({"n": 1.0},), "none": None, "yes": True}
    entry = AuditEntry(actor="tester", kind="note", subject="note:1", at=T0, payload=raw)
    record = audit.extend(entry, 4, "e" * 64)
    assert record.payload == {"whole": 3, "ratio": 0.25, "band": "high", "steps": [{"n": 1}], "none": None, "yes": True}
    assert type(record.payload["whole"]) is int and type(record.payload["band"]) is str
    assert record.hash == audit.record_hash(
        seq=5, at=T0, actor="tester", kind="note", subject="note:1", payload=raw, prev_hash="e" * 64
    )
    assert audit.content_intact(record)


def test_a_payload_refused_for_its_keys_is_refused_before_its_values() -> None:
    entry = AuditEntry(actor="t", kind="note", subject="s", at=T0, payload={1: float("nan")})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="keys must be strings"):
        audit.extend(entry)
