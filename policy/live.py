"""The live policies of the hook path: the active stored version of a policy when there is one, else the bundled
document; re-read at most every few seconds, and at once in the process that activated a version."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from cdsctl.logs import get_logger
from policy.engine import RoutedPolicy
from policy.port import Policy
from policy.versions import PolicyVersion

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Resolved:
    policy: Policy
    checked_at: float


class LivePolicies(Mapping[str, Policy]):
    """A read-only mapping the hook pipeline looks its policies up in (`policies[service.policy]`, once per call).

    Another worker process may activate a version: each process looks again once `refresh_seconds` have passed
    since it last looked, so every worker follows an activation within that time; the activating process calls
    `invalidate` and follows at once. A compiled policy is kept per content hash, so looking again is one indexed
    read, never a recompilation. When the store cannot be read, the policy last in force stays in force.
    """

    def __init__(
        self,
        bundled: Mapping[str, Policy],
        active_version: Callable[[str], PolicyVersion | None],
        *,
        refresh_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bundled = dict(bundled)
        self._active_version = active_version
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._resolved: dict[str, _Resolved] = {}
        self._compiled: dict[str, RoutedPolicy] = {}
        self._lock = threading.Lock()

    @property
    def bundled(self) -> Mapping[str, Policy]:
        return self._bundled

    def invalidate(self, policy_id: str | None = None) -> None:
        """Look the policy (or every policy) up again on its next use."""
        with self._lock:
            if policy_id is None:
                self._resolved.clear()
            else:
                self._resolved.pop(policy_id, None)

    def __getitem__(self, policy_id: str) -> Policy:
        now = self._monotonic()
        resolved = self._resolved.get(policy_id)
        if resolved is not None and now - resolved.checked_at < self._refresh_seconds:
            return resolved.policy
        policy = self._resolve(policy_id, fallback=None if resolved is None else resolved.policy)
        if policy is None:
            raise KeyError(policy_id)
        with self._lock:
            self._resolved[policy_id] = _Resolved(policy, now)
        return policy

    def _resolve(self, policy_id: str, *, fallback: Policy | None) -> Policy | None:
        try:
            version = self._active_version(policy_id)
        except Exception as exc:
            # Whatever the store's failure, the hook path keeps the policy last in force rather than none.
            log.warning("policy.live_lookup_failed", policy=policy_id, error=type(exc).__name__)
            return fallback or self._bundled.get(policy_id)
        if version is None:
            return self._bundled.get(policy_id)
        compiled = self._compiled.get(version.content_hash)
        if compiled is None:
            compiled = RoutedPolicy(version.document())
            with self._lock:
                self._compiled[version.content_hash] = compiled
        return compiled

    def __contains__(self, policy_id: object) -> bool:
        if not isinstance(policy_id, str):
            return False
        try:
            self[policy_id]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._bundled) | set(self._resolved)))

    def __len__(self) -> int:
        return len(set(self._bundled) | set(self._resolved))
