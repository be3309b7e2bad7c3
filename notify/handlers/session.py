"""The policy state as a timer handler sees it: read and appended through the timer's own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notify.port import NotifyUnitOfWork
from notify.unit_of_work import SqlNotifyUnitOfWork
from policy.events import PolicyEvent
from store.policy_state import SqlPolicyState, record_events


@dataclass(frozen=True, slots=True)
class PolicyLedger:
    uow: SqlNotifyUnitOfWork
    state: SqlPolicyState

    def record(self, events: Sequence[PolicyEvent]) -> None:
        record_events(self.uow.session, events)


def policy_ledger(uow: NotifyUnitOfWork, patient: str) -> PolicyLedger:
    """The patient's policy state, locked for the transaction as a hook call locks it (on PostgreSQL)."""
    if not isinstance(uow, SqlNotifyUnitOfWork):
        raise TypeError("live-path timers need the SQL unit of work, where the policy state lives")
    return PolicyLedger(uow, SqlPolicyState(uow.session, patient_keys=[patient]))
