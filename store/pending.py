"""A transaction's hook-call rows held back and written together: write-behind for the hot path.

A hook call's risk outputs, decisions, cards and policy events are not read back by the call that wrote them, so they
wait on the session (`PendingRows`) and go in when the transaction commits, one multi-row statement per table for
every call recorded in it: a batch of calls (api.hook_runner) then pays for a table's statement once, not once per
call. The hook call's own row (`hook_calls`) waits with them on PostgreSQL when the batch looked up its calls'
hookInstances first (store.repository: SqlRepository.expect_hook_calls), and is written at once otherwise: its
unique hookInstance is what tells a retry from a new call. A waiting hook-call row whose hookInstance another
transaction took meanwhile fails the write (HookInstanceTakenError), and with it the transaction; its calls are then
recorded again.

Nothing may read the store as if the rows were there before they are: every statement run through the session
(`Session.execute` and its kin) writes them first, as SQLAlchemy's autoflush does for ORM objects, and so does the
commit. The policy state's own reads (store.policy_state) need not: a patient's history is written first only when
rows of that patient wait, and the unit's interruptive-card count adds the waiting cards to the stored ones. A
savepoint never holds waiting rows: they are written before one begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.orm import Session, SessionTransaction

from store.driver import cursor_of, driver_of, insert_new, insert_rows
from store.tables import CardRow, DecisionRow, HookCallRow, PolicyEventRow, RiskOutputRow

_HOOK_CALLS: Table = HookCallRow.__table__  # type: ignore[assignment]
_RISK_OUTPUTS: Table = RiskOutputRow.__table__  # type: ignore[assignment]
_DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]
_CARDS: Table = CardRow.__table__  # type: ignore[assignment]
_EVENTS: Table = PolicyEventRow.__table__  # type: ignore[assignment]

HOOK_CALL_COLUMNS = (
    *("hook_instance", "service_id", "hook", "actor", "patient_key", "encounter_id", "response", "received_at"),
)
RISK_OUTPUT_COLUMNS = (
    *("hook_instance", "scorer_id", "scorer_version", "score", "band", "partial", "missing", "explanation"),
    *("features", "input_hash", "as_of", "patient_key", "encounter_id", "recorded_at"),
)
# The first column, the risk output's id, is known only once the outputs are written.
DECISION_COLUMNS = (
    *("risk_output_id", "action", "reasons", "policy_id", "policy_version", "route", "inputs_hash", "decided_at"),
    *("delay_until", "trace", "escalation"),
)
# The second column, the decision's id, is known only once the decisions are written.
CARD_COLUMNS = ("uuid", "decision_id", "hook_instance", "service_id", "body", "created_at")
# The last column, the decision's id, likewise.
EVENT_COLUMNS = ("at", "kind", "patient_key", "alert_key", "unit_id", "until", "interruptive", "payload", "decision_id")
_EVENT_PATIENT, _EVENT_KIND, _EVENT_UNIT, _EVENT_INTERRUPTIVE, _EVENT_AT = (
    EVENT_COLUMNS.index(name) for name in ("patient_key", "kind", "unit_id", "interruptive", "at")
)

_SILENCE_KINDS = frozenset({"SilenceCreated", "SilenceExpired"})
_KEY = "cds.pending_rows"


class HookInstanceTakenError(RuntimeError):
    """A waiting hook call's hookInstance was recorded by another transaction after this one looked it up."""


class PendingCall:
    """One hook call's rows, waiting; its decisions' ids once written (in the order of its results)."""

    __slots__ = ("cards", "decision_ids", "decisions", "events", "outputs")

    def __init__(self, outputs: list[tuple[Any, ...]], decisions: list[tuple[Any, ...]]) -> None:
        self.outputs = outputs  # rows in RISK_OUTPUT_COLUMNS order
        self.decisions = decisions  # rows in DECISION_COLUMNS order without the first column
        self.cards: list[tuple[int, tuple[Any, ...]]] = []  # (its decision's index, row without decision_id)
        self.events: list[tuple[int | None, tuple[Any, ...]]] = []  # (its decision's index or None, row without it)
        self.decision_ids: list[int] | None = None


class PendingRows:
    """The rows of the calls a transaction recorded and has not written yet, in the order they were recorded."""

    def __init__(self) -> None:
        self.calls: list[PendingCall] = []
        self.hook_calls: list[tuple[Any, ...]] = []  # rows in HOOK_CALL_COLUMNS order
        self._patients: set[str] = set()
        # (unit, at) of each waiting interruptive AlertSurfaced event: the unit's budget counts them.
        self._interruptive: list[tuple[str | None, datetime]] = []
        self.has_silences = False  # a silence's event waits: the silences are read after writing it

    def add_call(self, call: PendingCall) -> None:
        self.calls.append(call)

    def add_events(self, call: PendingCall, rows: Sequence[tuple[Any, ...]], decisions: Sequence[int | None]) -> None:
        """Event rows (without their decision id) of `call`, each with the index of its decision among the call's."""
        for row, decision in zip(rows, decisions, strict=True):
            call.events.append((decision, row))
            patient = row[_EVENT_PATIENT]
            if patient is not None:
                self._patients.add(patient)
            kind = row[_EVENT_KIND]
            if kind == "AlertSurfaced" and row[_EVENT_INTERRUPTIVE]:
                self._interruptive.append((row[_EVENT_UNIT], row[_EVENT_AT]))
            elif kind in _SILENCE_KINDS:
                self.has_silences = True

    def has_patient(self, patient: str) -> bool:
        return patient in self._patients

    def interruptive_since(self, unit_id: str | None, since: datetime) -> int:
        """How many waiting events the unit's interruptive count would find once written (its query's conditions)."""
        return sum(1 for unit, at in self._interruptive if unit == unit_id and at >= since)

    def write(self, session: Session) -> None:
        """Every waiting row, one multi-row statement per table: outputs, then decisions with their outputs' ids,
        then cards and events with their decisions' ids, events in the order they were recorded."""
        calls = self.calls
        if not calls and not self.hook_calls:
            return
        driver = driver_of(session)
        cursor = cursor_of(session)
        try:
            if self.hook_calls:
                expected = [row[0] for row in self.hook_calls]
                inserted = insert_new(cursor, driver, _HOOK_CALLS, HOOK_CALL_COLUMNS, self.hook_calls, "hook_instance")
                if len(inserted) != len(expected):
                    raise HookInstanceTakenError(f"{len(expected) - len(inserted)} hookInstance(s) recorded meanwhile")
                self.hook_calls = []
            output_ids = iter(
                insert_rows(
                    cursor,
                    driver,
                    _RISK_OUTPUTS,
                    RISK_OUTPUT_COLUMNS,
                    [row for call in calls for row in call.outputs],
                    returning_ids=True,
                )
            )
            decision_rows = [(next(output_ids), *row) for call in calls for row in call.decisions]
            decision_ids = insert_rows(cursor, driver, _DECISIONS, DECISION_COLUMNS, decision_rows, returning_ids=True)
            cards: list[tuple[Any, ...]] = []
            events: list[tuple[Any, ...]] = []
            first = 0
            for call in calls:
                ids = call.decision_ids = decision_ids[first : first + len(call.decisions)]
                first += len(call.decisions)
                cards.extend((row[0], ids[index], *row[1:]) for index, row in call.cards)
                events.extend((*row, None if index is None else ids[index]) for index, row in call.events)
            insert_rows(cursor, driver, _CARDS, CARD_COLUMNS, cards)
            # In order (the policy state reads "newest" by id): on PostgreSQL the ordered form draws the ids so.
            insert_rows(cursor, driver, _EVENTS, EVENT_COLUMNS, events, returning_ids=driver.postgres)
        finally:
            cursor.close()
        self.calls = []
        self._patients.clear()
        self._interruptive.clear()
        self.has_silences = False


def pending_rows(session: Session) -> PendingRows | None:
    """The session's waiting rows, None when no call has left any."""
    found: PendingRows | None = session.info.get(_KEY)
    return found


def waiting_rows(session: Session) -> PendingRows:
    """The session's waiting rows, for a call to leave its own with."""
    found = pending_rows(session)
    if found is None:
        found = session.info[_KEY] = PendingRows()
    return found


def write_pending(session: Session) -> None:
    """Write the session's waiting rows now (nothing when none wait)."""
    found = pending_rows(session)
    if found is not None and (found.calls or found.hook_calls):
        found.write(session)


@event.listens_for(Session, "do_orm_execute")
def _write_before_any_statement(state: Any) -> None:
    write_pending(state.session)


@event.listens_for(Session, "after_transaction_create")
def _write_before_a_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint's rollback must not take rows recorded before it; rows recorded inside one are written at once
    # (see PendingRows users), so a savepoint never holds waiting rows.
    if transaction.nested:
        write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous: Any) -> None:
    # The calls they describe were rolled back with the transaction.
    if not session.in_transaction():
        session.info.pop(_KEY, None)
