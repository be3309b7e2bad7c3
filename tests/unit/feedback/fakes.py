"""An in-memory action ledger whose policy events land in an `InMemoryPolicyState` (the Ward's), for unit tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from feedback.actions import ClinicianAction
from policy.events import PolicyEvent
from policy.state import InMemoryPolicyState
from store.port import StoredCard
from tests.unit.policy.support import START


def stored_card(
    uuid: str = "card-1", *, patient: str = "p1", scorer: str = "news2", band: str = "medium"
) -> StoredCard:
    return StoredCard(
        uuid=uuid,
        hook_instance=f"hook-{uuid}",
        service_id="deterioration-news2",
        body={"uuid": uuid, "indicator": "warning", "summary": "NEWS2 5"},
        created_at=START,
        action="surface",
        reasons=("route-matched",),
        policy_id="deterioration",
        policy_version="1",
        route="ward",
        scorer_id=scorer,
        scorer_version="1",
        band=band,
        score=5.0,
        patient_key=patient,
        encounter_id="enc-1",
    )


@dataclass
class Recorded:
    action: ClinicianAction
    card: StoredCard | None
    superseded: bool


@dataclass
class FakeLedger:
    state: InMemoryPolicyState
    cards: dict[str, StoredCard] = field(default_factory=dict)
    actions: list[Recorded] = field(default_factory=list)
    events: list[PolicyEvent] = field(default_factory=list)

    def find_card(self, uuid: str) -> StoredCard | None:
        return self.cards.get(uuid)

    def newest_action_at(self, patient_key: str, alert_key: str) -> datetime | None:
        times = [
            r.action.at
            for r in self.actions
            if r.card is not None and (r.card.patient_key, r.card.scorer_id) == (patient_key, alert_key)
        ]
        return max(times, default=None)

    def add_action(self, action: ClinicianAction, card: StoredCard | None, *, superseded: bool, now: datetime) -> bool:
        key = (action.card_uuid, action.action, action.at)
        if any((r.action.card_uuid, r.action.action, r.action.at) == key for r in self.actions):
            return False
        self.actions.append(Recorded(action, card, superseded))
        return True

    def record_events(self, events: Iterable[PolicyEvent]) -> None:
        batch = list(events)
        self.events.extend(batch)
        self.state.apply(batch)


@dataclass
class FakeActionUnitOfWork:
    actions: FakeLedger
    commits: int = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def commit(self) -> None:
        self.commits += 1
