"""The audit hash chain as pure functions: canonical JSON, record hashes, and verification naming the first fault."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from store.port import GENESIS_HASH, AuditEntry, AuditRecord, ChainCheck, ChainFault

# Values that normalise to themselves, tested by exact type: an isinstance chain per leaf costs more than the
# payload's own serialisation (subclasses, such as a StrEnum member, take the general path below).
_AS_IS = frozenset({str, int, bool, type(None)})


def normalise_json(value: Any) -> Any:
    """A JSON-ready copy whose canonical text survives a round trip through any backend's JSON column.

    Integral floats become ints because PostgreSQL's JSONB keeps numbers as decimals and hands `1e20` back as
    `100000000000000000000`; without this a stored record would hash differently when read back. Documents have been
    JSON text since migration 0008, but records written before it were converted from JSONB's text, so they read
    back that way still.
    """
    if type(value) in _AS_IS:
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum member becomes its plain value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("audit payloads cannot hold NaN or infinity")
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("audit payload keys must be strings")
        return {str(key): item if type(item) in _AS_IS else normalise_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [item if type(item) in _AS_IS else normalise_json(item) for item in value]
    raise TypeError(f"not JSON-ready: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def instant_text(at: datetime) -> str:
    return _utc(at).isoformat(timespec="microseconds")


def _utc(at: datetime) -> datetime:
    # astimezone() would read a naive time as the machine's local time: a silent shift, so refuse instead.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime refused: audit times must carry a timezone")
    return at.astimezone(UTC)


def record_hash(
    *, seq: int, at: datetime, actor: str, kind: str, subject: str, payload: Mapping[str, Any], prev_hash: str
) -> str:
    """sha256 over the canonical JSON of the record's content, followed by the previous record's hash."""
    return _digest(seq, at, actor, kind, subject, normalise_json(payload), prev_hash)


def _digest(seq: int, at: datetime, actor: str, kind: str, subject: str, payload: Any, prev_hash: str) -> str:
    # `payload` already normalised: normalise_json gives back what it is given on its own output.
    body = canonical_json(
        {"seq": seq, "at": instant_text(at), "actor": actor, "kind": kind, "subject": subject, "payload": payload}
    )
    return hashlib.sha256((body + prev_hash).encode("utf-8")).hexdigest()


def extend(entry: AuditEntry, head_seq: int = 0, head_hash: str = GENESIS_HASH) -> AuditRecord:
    """The record that appends `entry` after the chain's head (seq 0 and the genesis hash for an empty chain)."""
    seq = head_seq + 1
    at = _utc(entry.at)
    payload = normalise_json(entry.payload)
    digest = _digest(seq, at, entry.actor, entry.kind, entry.subject, payload, head_hash)
    return AuditRecord(
        seq=seq,
        at=at,
        actor=entry.actor,
        kind=entry.kind,
        subject=entry.subject,
        payload=payload,
        prev_hash=head_hash,
        hash=digest,
    )


def content_intact(record: AuditRecord) -> bool:
    return record.hash == record_hash(
        seq=record.seq,
        at=record.at,
        actor=record.actor,
        kind=record.kind,
        subject=record.subject,
        payload=record.payload,
        prev_hash=record.prev_hash,
    )


def verify_chain(records: Iterable[AuditRecord], hash_exists: Callable[[str], bool]) -> ChainCheck:
    """Walk `records` in sequence order and stop at the first fault.

    `hash_exists` tells whether any stored record carries a given hash; it separates a record that was moved
    (its predecessor still exists, elsewhere) from one whose predecessor is gone.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    before_prev_hash = GENESIS_HASH
    checked = 0
    for record in records:
        if record.seq != expected_seq:
            # A gap in the numbering: the record that should sit here is missing.
            return _fault(checked, expected_seq - 1, prev_hash, expected_seq, ChainFault.REMOVED)
        intact = content_intact(record)
        if record.prev_hash == prev_hash:
            if not intact:
                return _fault(checked, expected_seq - 1, prev_hash, record.seq, ChainFault.EDITED)
        elif record.prev_hash == GENESIS_HASH or hash_exists(record.prev_hash):
            # It follows a record that exists, just not the one before it here: records were swapped or moved.
            return _fault(checked, expected_seq - 1, prev_hash, record.seq, ChainFault.REORDERED)
        elif intact and record.seq > 1:
            # This record is untouched but its predecessor's hash changed: the predecessor was edited and rehashed.
            return _fault(checked - 1, expected_seq - 2, before_prev_hash, record.seq - 1, ChainFault.EDITED)
        else:
            # It names a predecessor no longer stored, and the rest was renumbered to close the gap.
            return _fault(checked, expected_seq - 1, prev_hash, record.seq, ChainFault.REMOVED)
        checked += 1
        expected_seq += 1
        before_prev_hash, prev_hash = prev_hash, record.hash
    return ChainCheck(checked=checked, head_seq=expected_seq - 1, head_hash=prev_hash)


def _fault(checked: int, head_seq: int, head_hash: str, bad_seq: int, fault: ChainFault) -> ChainCheck:
    # The head reported with a fault is the last record known good, so an operator knows what can be trusted.
    return ChainCheck(checked=checked, head_seq=head_seq, head_hash=head_hash, bad_seq=bad_seq, fault=fault)
