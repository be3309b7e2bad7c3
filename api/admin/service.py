"""What the admin routes do, without HTTP: each change is stored with its audit record in one transaction, and an
activation reaches the live hook path through `LivePolicies`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from policy.document import PolicyDocument, PolicyValidationError, load_policy
from policy.live import LivePolicies
from policy.silences import SilenceRecord, SilenceRefusedError, SilenceStatus, create_silence, expire_silence
from policy.versions import PolicyDiff, StoredVersion, diff_versions, new_version
from store.policy_state import record_events
from store.policy_versions import SqlPolicyVersions, silence_records
from store.port import AuditEntry
from store.repository import SqlRepository


class AdminAuditKind(StrEnum):
    POLICY_VERSION_CREATED = "policy-version-created"
    POLICY_VERSION_ACTIVATED = "policy-version-activated"
    SILENCE_CREATED = "silence-created"
    SILENCE_EXPIRED = "silence-expired"


class NotFoundError(LookupError):
    """No such policy, version or silence; the message names what was looked for."""


class ConflictError(ValueError):
    """The request contradicts what is stored (a used version number, a silence already over)."""


@dataclass(frozen=True, slots=True)
class PolicySummary:
    policy_id: str
    # The version the hook path decides with now, and where it comes from.
    live_version: str | None
    source: str  # "stored" when an activated stored version is live, else "bundled"
    active_version: str | None
    stored_versions: int


class PolicyAdmin:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        live: LivePolicies,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._clock = clock

    def policies(self) -> list[PolicySummary]:
        with self._sessions() as session:
            versions = SqlPolicyVersions(session)
            ids = sorted(set(self._live.bundled) | set(versions.policy_ids()))
            histories = {policy_id: versions.history(policy_id) for policy_id in ids}
        out = []
        for policy_id, history in histories.items():
            active = next((stored for stored in history if stored.active), None)
            live = self._live.get(policy_id)
            out.append(
                PolicySummary(
                    policy_id=policy_id,
                    live_version=None if live is None else live.version,
                    source="stored" if active is not None else "bundled",
                    active_version=None if active is None else active.version.version,
                    stored_versions=len(history),
                )
            )
        return out

    def history(self, policy_id: str) -> list[StoredVersion]:
        with self._sessions() as session:
            history = SqlPolicyVersions(session).history(policy_id)
        if not history and policy_id not in self._live.bundled:
            raise NotFoundError(f"no policy {policy_id!r}")
        return history

    def version(self, policy_id: str, version: str) -> StoredVersion:
        with self._sessions() as session:
            found = SqlPolicyVersions(session).get(policy_id, version)
        if found is None:
            raise NotFoundError(f"policy {policy_id!r} has no stored version {version!r}")
        return found

    def diff(self, policy_id: str, old: str, new: str) -> PolicyDiff:
        return diff_versions(self.version(policy_id, old).version, self.version(policy_id, new).version)

    @staticmethod
    def validate(text: str) -> PolicyDocument:
        """The validated document, or PolicyValidationError with every error and its path."""
        return load_policy(text)

    def create_version(self, policy_id: str, text: str, *, author: str, comment: str) -> tuple[StoredVersion, bool]:
        """Store a new version (not yet active); returns it and whether it was new (the same content again is not).
        PolicyValidationError for an invalid document, VersionRefusedError (a ValueError) for a refused one."""
        version = new_version(text, author=author, comment=comment, now=self._clock())
        if version.policy_id != policy_id:
            raise PolicyValidationError([f"id: the document is policy {version.policy_id!r}, not {policy_id!r}"])
        with self._sessions() as session, session.begin():
            stored, created = SqlPolicyVersions(session).add(version)
            if created:
                _audit(
                    session,
                    author,
                    AdminAuditKind.POLICY_VERSION_CREATED,
                    f"policy:{policy_id}@{version.version}",
                    version.created_at,
                    {"content_hash": version.content_hash, "comment": version.comment},
                )
        return stored, created

    def activate(self, policy_id: str, version: str, *, actor: str) -> tuple[StoredVersion, StoredVersion | None]:
        """Make a stored version the live one; returns it and the one it replaced."""
        now = self._clock()
        with self._sessions() as session, session.begin():
            try:
                activated, previous = SqlPolicyVersions(session).activate(policy_id, version, now=now)
            except LookupError as exc:
                raise NotFoundError(str(exc)) from None
            if previous is not activated:
                _audit(
                    session,
                    actor,
                    AdminAuditKind.POLICY_VERSION_ACTIVATED,
                    f"policy:{policy_id}@{version}",
                    now,
                    {
                        "content_hash": activated.version.content_hash,
                        "previous_version": None if previous is None else previous.version.version,
                    },
                )
        # After the commit: this process follows at once, other workers within the refresh interval.
        self._live.invalidate(policy_id)
        return activated, previous


class SilenceAdmin:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._sessions = sessions
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    def create(
        self,
        *,
        match: Mapping[str, Any],
        starts_at: datetime | None,
        ends_at: datetime,
        author: str,
        comment: str,
        patient: str | None = None,
        unit_id: str | None = None,
    ) -> SilenceRecord:
        """Validate and store a silence (SilenceRefusedError lists every problem); it mutes from `starts_at`."""
        now = self._clock()
        created = create_silence(
            silence_id=str(uuid.uuid4()),
            match=match,
            starts_at=starts_at or now,
            ends_at=ends_at,
            author=author,
            comment=comment,
            now=now,
            patient=patient,
            unit_id=unit_id,
        )
        silence = created.silence
        with self._sessions() as session, session.begin():
            record_events(session, [created])
            _audit(
                session,
                author,
                AdminAuditKind.SILENCE_CREATED,
                f"silence:{silence.silence_id}",
                now,
                {
                    "match": silence.match.model_dump(mode="json", by_alias=True, exclude_none=True),
                    "starts_at": silence.starts_at.isoformat(),
                    "ends_at": silence.ends_at.isoformat(),
                    "comment": silence.comment,
                    "scoped_to_patient": silence.patient is not None,
                    "unit_id": silence.unit_id,
                },
            )
        return SilenceRecord(silence)

    def silences(self, status: SilenceStatus | None = None) -> list[SilenceRecord]:
        """Every silence (newest first), or those with `status` now."""
        now = self._clock()
        with self._sessions() as session:
            records = list(silence_records(session).values())
        records.sort(key=lambda r: r.silence.created_at, reverse=True)
        return [r for r in records if status is None or r.status(now) is status]

    def expire(self, silence_id: str, *, actor: str) -> SilenceRecord:
        """End a silence now; ConflictError when it has already ended."""
        now = self._clock()
        with self._sessions() as session, session.begin():
            record = silence_records(session).get(silence_id)
            if record is None:
                raise NotFoundError(f"no silence {silence_id!r}")
            if record.status(now) is SilenceStatus.EXPIRED:
                raise ConflictError(f"silence {silence_id} already ended at {record.silence.ends_at.isoformat()}")
            record_events(session, [expire_silence(record.silence, now)])
            _audit(session, actor, AdminAuditKind.SILENCE_EXPIRED, f"silence:{silence_id}", now, {})
        return SilenceRecord(replace(record.silence, ends_at=min(record.silence.ends_at, now)), expired_at=now)


def _audit(
    session: Session, actor: str, kind: AdminAuditKind, subject: str, at: datetime, payload: dict[str, Any]
) -> None:
    SqlRepository(session).append_audit(AuditEntry(actor=actor, kind=kind, subject=subject, at=at, payload=payload))


__all__ = ["AdminAuditKind", "ConflictError", "NotFoundError", "PolicyAdmin", "SilenceAdmin", "SilenceRefusedError"]
