"""Policy versions and silences in the database: versions in `policy_versions` (immutable, one active per policy),
silences as events in `policy_events`, read back for listing. Both inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from policy.events import SilenceCreated, SilenceExpired
from policy.silences import SilenceRecord, fold_silences
from policy.versions import PolicyVersion, StoredVersion, VersionRefusedError
from store.policy_state import _decode
from store.tables import PolicyEventRow, PolicyVersionRow

_VERSIONS: Table = PolicyVersionRow.__table__  # type: ignore[assignment]
_EVENTS: Table = PolicyEventRow.__table__  # type: ignore[assignment]
_SILENCE_KINDS = ("SilenceCreated", "SilenceExpired")


class SqlPolicyVersions:
    """The rules of `policy.versions.PolicyVersions` over the table: the same content again is a no-op, new content
    under a used number is refused, and activation moves the one active flag of a policy."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, version: PolicyVersion) -> tuple[StoredVersion, bool]:
        """The stored version, and whether it was new."""
        for stored in self.history(version.policy_id):
            if stored.version.content_hash == version.content_hash:
                return stored, False
            if stored.version.version == version.version:
                raise VersionRefusedError(
                    f"policy {version.policy_id} version {version.version} already exists with other content; "
                    "versions are never edited in place: give the change a new version"
                )
        try:
            # A savepoint: should a concurrent request store the same number first, the transaction stays usable.
            with self._session.begin_nested():
                self._session.execute(
                    _VERSIONS.insert().values(
                        policy_id=version.policy_id,
                        version=version.version,
                        content=version.text,
                        content_hash=version.content_hash,
                        author=version.author,
                        comment=version.comment,
                        created_at=version.created_at,
                        active=False,
                    )
                )
        except IntegrityError:
            raise VersionRefusedError(
                f"policy {version.policy_id} version {version.version} was stored by another request just now"
            ) from None
        return StoredVersion(version, active=False), True

    def policy_ids(self) -> list[str]:
        return list(self._session.scalars(select(_VERSIONS.c.policy_id).distinct().order_by(_VERSIONS.c.policy_id)))

    def history(self, policy_id: str) -> list[StoredVersion]:
        rows = self._session.execute(
            select(_VERSIONS).where(_VERSIONS.c.policy_id == policy_id).order_by(_VERSIONS.c.id)
        ).all()
        return [_stored(row) for row in rows]

    def get(self, policy_id: str, version: str) -> StoredVersion | None:
        row = self._session.execute(
            select(_VERSIONS).where(_VERSIONS.c.policy_id == policy_id, _VERSIONS.c.version == version)
        ).one_or_none()
        return None if row is None else _stored(row)

    def active(self, policy_id: str) -> StoredVersion | None:
        row = self._session.execute(
            select(_VERSIONS).where(_VERSIONS.c.policy_id == policy_id, _VERSIONS.c.active.is_(True))
        ).one_or_none()
        return None if row is None else _stored(row)

    def activate(self, policy_id: str, version: str, *, now: datetime) -> tuple[StoredVersion, StoredVersion | None]:
        """Make `version` the active one; returns it and the version it replaced (None if none was active)."""
        # Lock the policy's rows (PostgreSQL; SQLite's IMMEDIATE transaction already holds the only writer lock),
        # so two activations of one policy run one after the other instead of colliding on the one-active index.
        self._session.execute(select(_VERSIONS.c.id).where(_VERSIONS.c.policy_id == policy_id).with_for_update())
        target = self.get(policy_id, version)
        if target is None:
            raise LookupError(f"policy {policy_id} has no version {version}")
        previous = self.active(policy_id)
        if previous is not None and previous.version.version == version:
            return previous, previous
        # Core statements: activation is the one change a stored version may see (see store.tables).
        self._session.execute(
            update(_VERSIONS)
            .where(_VERSIONS.c.policy_id == policy_id, _VERSIONS.c.active.is_(True))
            .values(active=False)
        )
        self._session.execute(
            update(_VERSIONS)
            .where(_VERSIONS.c.policy_id == policy_id, _VERSIONS.c.version == version)
            .values(active=True, activated_at=now)
        )
        return StoredVersion(target.version, active=True, activated_at=now), previous


def _stored(row: Row[Any]) -> StoredVersion:
    version = PolicyVersion(
        policy_id=row.policy_id,
        version=row.version,
        content_hash=row.content_hash,
        author=row.author,
        comment=row.comment,
        created_at=row.created_at,
        text=row.content,
    )
    return StoredVersion(version, active=bool(row.active), activated_at=row.activated_at)


def silence_records(session: Session) -> dict[str, SilenceRecord]:
    """Every silence ever created, folded with its expiries, by id."""
    rows = session.execute(
        select(_EVENTS.c.kind, _EVENTS.c.payload).where(_EVENTS.c.kind.in_(_SILENCE_KINDS)).order_by(_EVENTS.c.id)
    ).all()
    events: list[SilenceCreated | SilenceExpired] = []
    for row in rows:
        event = _decode(row.kind, row.payload)
        if isinstance(event, SilenceCreated | SilenceExpired):
            events.append(event)
    return fold_silences(events)


def active_version_loader(sessions: sessionmaker[Session]) -> Callable[[str], PolicyVersion | None]:
    """What `policy.live.LivePolicies` asks: the active stored version of a policy, read in a short transaction."""

    def active_version(policy_id: str) -> PolicyVersion | None:
        with sessions() as session:
            found = SqlPolicyVersions(session).active(policy_id)
            return None if found is None else found.version

    return active_version
