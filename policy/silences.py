"""Silences: time-bounded mutes an informaticist creates with an author and a comment, listed and expired."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from policy.document import Match, error_path
from policy.events import Silence, SilenceCreated, SilenceExpired
from policy.matching import CompiledMatch, Facts


class SilenceRefusedError(ValueError):
    """A silence request that cannot be accepted; the message says which field and why."""


class SilenceStatus(StrEnum):
    PENDING = "pending"  # starts later
    ACTIVE = "active"
    EXPIRED = "expired"  # ran out, or was expired early


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    """A silence as listed: its latest form (an early expiry moves `ends_at` to the expiry) and when it was expired."""

    silence: Silence
    expired_at: datetime | None = None

    def status(self, now: datetime) -> SilenceStatus:
        if now >= self.silence.ends_at:
            return SilenceStatus.EXPIRED
        return SilenceStatus.ACTIVE if now >= self.silence.starts_at else SilenceStatus.PENDING


def fold_silences(events: Iterable[SilenceCreated | SilenceExpired]) -> dict[str, SilenceRecord]:
    """The silences a log of silence events describes, by id, folded as the live policy state folds them."""
    records: dict[str, SilenceRecord] = {}
    for event in events:
        if isinstance(event, SilenceCreated):
            records[event.silence.silence_id] = SilenceRecord(event.silence)
        elif event.silence_id in records:
            record = records[event.silence_id]
            ends_at = min(record.silence.ends_at, event.at)
            records[event.silence_id] = SilenceRecord(replace(record.silence, ends_at=ends_at), expired_at=event.at)
    return records


def create_silence(
    *,
    silence_id: str,
    match: Mapping[str, Any],
    starts_at: datetime,
    ends_at: datetime,
    author: str,
    comment: str,
    now: datetime,
    patient: str | None = None,
    unit_id: str | None = None,
) -> SilenceCreated:
    """Validate a silence request and return the event that records it."""
    problems: list[str] = []
    if not author.strip():
        problems.append("author: a silence needs an author")
    if not comment.strip():
        problems.append("comment: a silence needs a comment saying why")
    if ends_at <= starts_at:
        problems.append("ends_at: must be after starts_at")
    if ends_at <= now:
        problems.append("ends_at: must be in the future")
    compiled: Match | None = None
    try:
        compiled = Match.model_validate(dict(match))
    except ValidationError as exc:
        problems.extend(f"match.{error_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
    # A silence with no matcher at all would mute everything; it must say what it mutes.
    if compiled is not None and not compiled.model_dump(exclude_none=True) and patient is None and unit_id is None:
        problems.append("match: a silence needs at least one matcher, a patient or a unit")
    if problems or compiled is None:
        raise SilenceRefusedError("; ".join(problems))
    silence = Silence(
        silence_id=silence_id,
        match=compiled,
        starts_at=starts_at,
        ends_at=ends_at,
        author=author.strip(),
        comment=comment.strip(),
        created_at=now,
        patient=patient,
        unit_id=unit_id,
    )
    return SilenceCreated(silence=silence, at=now)


def expire_silence(silence: Silence, now: datetime) -> SilenceExpired:
    """End a silence early (it stays listed, with its end moved to now)."""
    return SilenceExpired(silence_id=silence.silence_id, at=now)


def silence_mutes(silence: Silence, facts: Facts, *, patient: str | None, unit_id: str | None) -> bool:
    if silence.patient is not None and silence.patient != patient:
        return False
    if silence.unit_id is not None and silence.unit_id != unit_id:
        return False
    return CompiledMatch(silence.match).matches(facts)
