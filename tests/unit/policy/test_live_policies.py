"""The live policies the hook path looks up: the active stored version when there is one, else the bundled one,
looked up again after the refresh interval or at once when invalidated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policy.document import BUNDLED_DIR, bundled_policy
from policy.engine import RoutedPolicy
from policy.live import LivePolicies
from policy.port import Policy
from policy.versions import PolicyVersion, new_version

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
BUNDLED_TEXT = (BUNDLED_DIR / "deterioration.yaml").read_text(encoding="utf-8")
STORED = new_version(
    BUNDLED_TEXT.replace('version: "1.0.0"', 'version: "2.0.0"'), author="staff:x", comment="c", now=NOW
)


class _Store:
    """The active version by policy id, counting look-ups; `broken` makes every look-up fail."""

    def __init__(self) -> None:
        self.active: dict[str, PolicyVersion] = {}
        self.lookups = 0
        self.broken = False

    def __call__(self, policy_id: str) -> PolicyVersion | None:
        self.lookups += 1
        if self.broken:
            raise ConnectionError("database unreachable")
        return self.active.get(policy_id)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _live(store: _Store, clock: _Clock, refresh: float = 5.0) -> LivePolicies:
    bundled: dict[str, Policy] = {"deterioration": RoutedPolicy(bundled_policy("deterioration"))}
    return LivePolicies(bundled, store, refresh_seconds=refresh, monotonic=clock)


def test_without_a_stored_version_the_bundled_policy_is_live() -> None:
    live = _live(_Store(), _Clock())

    assert live["deterioration"].version.startswith("1.0.0+")
    assert "deterioration" in live and "unknown" not in live
    with pytest.raises(KeyError):
        live["unknown"]


def test_an_activation_elsewhere_is_followed_once_the_refresh_interval_has_passed() -> None:
    store, clock = _Store(), _Clock()
    live = _live(store, clock)
    assert live["deterioration"].version.startswith("1.0.0+")

    store.active["deterioration"] = STORED
    clock.now = 4.9
    still = live["deterioration"].version
    clock.now = 5.0
    then = live["deterioration"].version

    assert still.startswith("1.0.0+") and then.startswith("2.0.0+")


def test_invalidating_follows_an_activation_at_once() -> None:
    store, clock = _Store(), _Clock()
    live = _live(store, clock)
    live["deterioration"]

    store.active["deterioration"] = STORED
    live.invalidate("deterioration")

    assert live["deterioration"].version.startswith("2.0.0+")


def test_looking_again_at_the_same_version_reuses_its_compiled_policy() -> None:
    store, clock = _Store(), _Clock()
    store.active["deterioration"] = STORED
    live = _live(store, clock, refresh=0)

    first, second = live["deterioration"], live["deterioration"]

    assert first is second
    assert store.lookups == 2


def test_when_the_store_cannot_be_read_the_policy_last_in_force_stays() -> None:
    store, clock = _Store(), _Clock()
    store.active["deterioration"] = STORED
    live = _live(store, clock, refresh=0)
    live["deterioration"]

    store.broken = True

    assert live["deterioration"].version.startswith("2.0.0+")
