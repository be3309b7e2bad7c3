"""The decision trace behind `explain`: every route tried and why it matched or not, then each mechanism's effect."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Mechanism(StrEnum):
    ROUTE = "route"
    NO_DATA = "no-data"
    INHIBITION = "inhibition"
    SILENCE = "silence"
    LOCKOUT = "lockout"
    SNOOZE = "snooze"
    DELAY = "delay"
    DEDUP = "dedup"
    ESCALATION = "escalation"
    TIME_WINDOW = "time-window"
    BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class RouteAttempt:
    route: str
    path: str
    matched: bool
    # The first matcher that failed, as a sentence (later ones are not evaluated); empty when the route matched.
    failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One mechanism looked at the decision; `changed` says whether it altered the outcome."""

    mechanism: Mechanism
    changed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Trace:
    attempts: tuple[RouteAttempt, ...]
    matched: tuple[str, ...]
    chosen: str
    steps: tuple[Step, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for GET /decisions/{id}/explain."""
        return {
            "routes_tried": [
                {"route": a.route, "path": a.path, "matched": a.matched, "failed": list(a.failures)}
                for a in self.attempts
            ],
            "routes_matched": list(self.matched),
            "route_chosen": self.chosen,
            "mechanisms": [
                {"mechanism": s.mechanism.value, "changed": s.changed, "detail": s.detail} for s in self.steps
            ],
        }
