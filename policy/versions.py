"""Policy versions: stored with author, time, comment and content hash, never edited in place, activated explicitly."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policy.document import PolicyDocument, Route, load_policy


class VersionRefusedError(ValueError):
    """A version that cannot be stored or activated; the message says why."""


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    policy_id: str
    version: str
    content_hash: str
    author: str
    comment: str
    created_at: datetime
    text: str

    def document(self) -> PolicyDocument:
        return load_policy(self.text)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A version as the store holds it: the immutable version, and whether it is the one in force."""

    version: PolicyVersion
    active: bool
    activated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PolicyActivated:
    policy_id: str
    content_hash: str
    actor: str
    at: datetime


def new_version(text: str, *, author: str, comment: str, now: datetime) -> PolicyVersion:
    """Validate a document (PolicyValidationError lists every error) and wrap it as a version to store."""
    if not author.strip() or not comment.strip():
        raise VersionRefusedError("a policy version needs an author and a comment")
    document = load_policy(text)
    return PolicyVersion(
        policy_id=document.id,
        version=document.version,
        content_hash=document.content_hash(),
        author=author.strip(),
        comment=comment.strip(),
        created_at=now,
        text=text,
    )


class PolicyVersions:
    """The in-memory registry of versions (the database adapter keeps the same rules)."""

    def __init__(self) -> None:
        self._versions: dict[str, list[PolicyVersion]] = {}
        self._active: dict[str, PolicyActivated] = {}

    def add(self, version: PolicyVersion) -> PolicyVersion:
        """Store a version. The same content again is a no-op; new content under a used version number is refused."""
        history = self._versions.setdefault(version.policy_id, [])
        for stored in history:
            if stored.content_hash == version.content_hash:
                return stored
            if stored.version == version.version:
                raise VersionRefusedError(
                    f"policy {version.policy_id} version {version.version} already exists with other content; "
                    "versions are never edited in place: give the change a new version"
                )
        history.append(version)
        return version

    def history(self, policy_id: str) -> tuple[PolicyVersion, ...]:
        return tuple(self._versions.get(policy_id, ()))

    def activate(self, policy_id: str, content_hash: str, *, actor: str, now: datetime) -> PolicyActivated:
        if not any(v.content_hash == content_hash for v in self.history(policy_id)):
            raise VersionRefusedError(f"policy {policy_id} has no stored version with hash {content_hash[:12]}")
        event = PolicyActivated(policy_id, content_hash, actor, now)
        self._active[policy_id] = event
        return event

    def active(self, policy_id: str) -> PolicyVersion | None:
        activated = self._active.get(policy_id)
        if activated is None:
            return None
        return next(v for v in self.history(policy_id) if v.content_hash == activated.content_hash)


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """What changed between two versions: the YAML as a unified diff, and which parts of the document changed."""

    unified: str
    # Top-level fields whose validated value differs (formatting and comments never count).
    changed_fields: tuple[str, ...]
    # Routes by path ("news2/news2-high", or the list index for an unnamed route).
    routes_added: tuple[str, ...]
    routes_removed: tuple[str, ...]
    routes_changed: tuple[str, ...]


def diff_versions(old: PolicyVersion, new: PolicyVersion) -> PolicyDiff:
    unified = "".join(
        difflib.unified_diff(
            old.text.splitlines(keepends=True),
            new.text.splitlines(keepends=True),
            fromfile=f"{old.policy_id}@{old.version}",
            tofile=f"{new.policy_id}@{new.version}",
        )
    )
    before, after = old.document(), new.document()
    dumped_before, dumped_after = _dump(before), _dump(after)
    changed = tuple(
        name
        for name in PolicyDocument.model_fields
        if name != "version" and dumped_before.get(name) != dumped_after.get(name)
    )
    old_routes, new_routes = dict(_routes(before.routes)), dict(_routes(after.routes))
    return PolicyDiff(
        unified=unified,
        changed_fields=changed,
        routes_added=tuple(path for path in new_routes if path not in old_routes),
        routes_removed=tuple(path for path in old_routes if path not in new_routes),
        routes_changed=tuple(
            path for path, route in new_routes.items() if path in old_routes and old_routes[path] != route
        ),
    )


def _dump(document: PolicyDocument) -> Mapping[str, Any]:
    return document.model_dump(mode="json", by_alias=False)


def _routes(routes: list[Route], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    # A route's own settings without its children, so a change deep down names only the route it is in.
    for index, route in enumerate(routes):
        path = f"{prefix}{route.name or index}"
        yield path, route.model_dump(mode="json", exclude={"routes"})
        yield from _routes(route.routes, f"{path}/")
