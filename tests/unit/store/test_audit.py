"""The audit hash chain: each kind of tampering is named at the record where it happened."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from store import audit
from store.port import GENESIS_HASH, AuditEntry, AuditRecord, ChainFault

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _chain(length: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for index in range(length):
        entry = AuditEntry(
            actor="tester",
            kind="hook-call",
            subject=f"hook:{index}",
            at=T0 + timedelta(seconds=index),
            payload={"n": index, "nested": {"band": "high", "score": 7.5}},
        )
        head = records[-1] if records else None
        records.append(audit.extend(entry, head.seq, head.hash) if head else audit.extend(entry))
    return records


def _verify(records: list[AuditRecord]) -> tuple[int | None, ChainFault | None]:
    hashes = {record.hash for record in records}
    check = audit.verify_chain(sorted(records, key=lambda r: r.seq), hashes.__contains__)
    return check.bad_seq, check.fault


def test_an_untouched_chain_verifies_and_reports_its_head() -> None:
    records = _chain(5)
    check = audit.verify_chain(records, lambda _digest: False)
    assert check.ok
    assert (check.checked, check.head_seq, check.head_hash) == (5, 5, records[-1].hash)


def test_an_empty_chain_verifies_with_the_genesis_head() -> None:
    check = audit.verify_chain([], lambda _digest: False)
    assert check.ok
    assert (check.head_seq, check.head_hash) == (0, GENESIS_HASH)


@pytest.mark.parametrize("position", range(1, 6))
@pytest.mark.parametrize(
    "change",
    [
        {"actor": "someone-else"},
        {"kind": "feedback"},
        {"subject": "hook:forged"},
        {"payload": {"n": 999}},
        {"at": T0 - timedelta(days=1)},
        {"hash": "f" * 64},
    ],
    ids=["actor", "kind", "subject", "payload", "at", "hash"],
)
def test_any_edit_of_any_record_is_named_as_edited_at_that_record(position: int, change: dict[str, object]) -> None:
    records = _chain(5)
    records[position - 1] = dataclasses.replace(records[position - 1], **change)  # type: ignore[arg-type]
    assert _verify(records) == (position, ChainFault.EDITED)


def test_an_edit_that_recomputes_the_records_hash_is_still_named_at_that_record() -> None:
    records = _chain(5)
    forged = dataclasses.replace(records[2], payload={"n": 999})
    records[2] = dataclasses.replace(
        forged,
        hash=audit.record_hash(
            seq=forged.seq,
            at=forged.at,
            actor=forged.actor,
            kind=forged.kind,
            subject=forged.subject,
            payload=forged.payload,
            prev_hash=forged.prev_hash,
        ),
    )
    assert _verify(records) == (3, ChainFault.EDITED)


@pytest.mark.parametrize("position", range(1, 5))
def test_a_removed_record_is_named_by_the_gap_it_leaves(position: int) -> None:
    records = _chain(5)
    del records[position - 1]
    assert _verify(records) == (position, ChainFault.REMOVED)


def test_a_removal_hidden_by_renumbering_is_still_named_as_removed() -> None:
    records = _chain(5)
    del records[2]
    records = [dataclasses.replace(r, seq=r.seq - 1) if r.seq > 3 else r for r in records]
    assert _verify(records) == (3, ChainFault.REMOVED)


@pytest.mark.parametrize(("first", "second"), [(1, 2), (2, 4), (4, 5)])
def test_swapped_records_are_named_as_reordered_at_the_first_moved_position(first: int, second: int) -> None:
    records = _chain(5)
    a, b = records[first - 1], records[second - 1]
    records[first - 1], records[second - 1] = dataclasses.replace(b, seq=first), dataclasses.replace(a, seq=second)
    assert _verify(records) == (first, ChainFault.REORDERED)


def test_a_fault_reports_the_last_record_that_can_still_be_trusted() -> None:
    records = _chain(5)
    records[3] = dataclasses.replace(records[3], subject="hook:forged")
    check = audit.verify_chain(records, lambda _digest: True)
    assert (check.head_seq, check.head_hash, check.checked) == (3, records[2].hash, 3)


def test_the_hash_does_not_depend_on_the_timezone_the_time_was_given_in() -> None:
    entry = AuditEntry(actor="a", kind="k", subject="s", at=T0, payload={})
    shifted = dataclasses.replace(entry, at=T0.astimezone(timezone(timedelta(hours=5, minutes=30))))
    assert audit.extend(entry).hash == audit.extend(shifted).hash


def test_integral_floats_hash_as_the_integers_a_json_database_returns() -> None:
    as_float = audit.extend(AuditEntry(actor="a", kind="k", subject="s", at=T0, payload={"x": 1e20, "y": 2.0}))
    as_int = audit.extend(AuditEntry(actor="a", kind="k", subject="s", at=T0, payload={"x": 10**20, "y": 2}))
    assert as_float.hash == as_int.hash
    assert as_float.payload == {"x": 10**20, "y": 2}


@pytest.mark.parametrize("payload", [{"x": float("nan")}, {"x": object()}, {1: "non-string key"}])
def test_payloads_that_cannot_round_trip_through_json_are_refused(payload: dict[object, object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        audit.extend(AuditEntry(actor="a", kind="k", subject="s", at=T0, payload=payload))  # type: ignore[arg-type]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        audit.extend(AuditEntry(actor="a", kind="k", subject="s", at=datetime(2026, 1, 1)))  # noqa: DTZ001
