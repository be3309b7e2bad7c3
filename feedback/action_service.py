"""Recording clinicians' actions: each once, in one transaction with its audit record and the policy events it
writes; a late action is kept as history, an action on an unknown card kept apart."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from feedback.actions import ActionReceipt, ActionStatus, ClinicianAction, is_superseded, policy_events
from policy.events import PolicyEvent
from store.port import StoredCard


class ActionLedger(Protocol):
    """What recording an action needs from the store (store.feedback_store.SqlActionLedger)."""

    def find_card(self, uuid: str) -> StoredCard | None: ...

    def newest_action_at(self, patient_key: str, alert_key: str) -> datetime | None:
        """The clinician's time of the newest action (or CDS Hooks feedback) already recorded on this patient's
        alert."""
        ...

    def add_action(self, action: ClinicianAction, card: StoredCard | None, *, superseded: bool, now: datetime) -> bool:
        """Store the action (linked to the card's decision, risk output and policy version when the card is known)
        and its audit record; False, storing nothing, when the same card, action and time are stored already."""
        ...

    def record_events(self, events: Iterable[PolicyEvent]) -> None: ...


class ActionUnitOfWork(Protocol):
    """One transaction over an `ActionLedger`: `with uow: ...; uow.commit()`."""

    @property
    def actions(self) -> ActionLedger: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...


def record_action(
    action: ClinicianAction, *, unit_of_work: Callable[[], ActionUnitOfWork], now: datetime
) -> ActionReceipt:
    """Record one action. Whether it changes the policy state is decided by its own timestamp, not by arrival:
    an action older than the newest one on the same alert is stored, marked superseded, and writes no events."""
    with unit_of_work() as uow:
        ledger = uow.actions
        card = ledger.find_card(action.card_uuid)
        if card is None:
            new = ledger.add_action(action, None, superseded=False, now=now)
            uow.commit()
            status = ActionStatus.UNKNOWN_CARD if new else ActionStatus.DUPLICATE
            return ActionReceipt(action.card_uuid, action.action, status)
        newest = None if card.patient_key is None else ledger.newest_action_at(card.patient_key, card.scorer_id)
        superseded = is_superseded(action, newest)
        if not ledger.add_action(action, card, superseded=superseded, now=now):
            return ActionReceipt(action.card_uuid, action.action, ActionStatus.DUPLICATE)
        events = [] if superseded else policy_events(action, card)
        ledger.record_events(events)
        uow.commit()
    status = ActionStatus.SUPERSEDED if superseded else ActionStatus.APPLIED
    return ActionReceipt(action.card_uuid, action.action, status, tuple(type(e).__name__ for e in events))
