"""The policy state in the database: policy events appended to `policy_events`, and `SqlPolicyState` answering the
engine's `PolicyState` queries from them, reading only the rows each query needs."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    literal_column,
    select,
)
from sqlalchemy import event as orm_events
from sqlalchemy.orm import Session, aliased

from notify.live_timers import FHIR_PATIENT_ID, arm_timers
from policy.document import Match
from policy.engine import Evaluation
from policy.events import (
    AlertAcknowledged,
    AlertDelayed,
    AlertDismissed,
    AlertSnoozed,
    AlertSuppressed,
    AlertSurfaced,
    DelayCancelled,
    DelayReleased,
    EscalationStarted,
    EscalationStepReached,
    OutputEvaluated,
    PolicyEvent,
    Silence,
    SilenceCreated,
    SilenceExpired,
)
from policy.port import EscalationStep, Indicator, Reason
from policy.state import Escalation
from store.documents import LEAVES, plain_json
from store.driver import Driver, cursor_of, driver_of, held_for_transaction, insert_rows, of_transaction
from store.pending import EVENT_COLUMNS, PendingCall, pending_rows, waiting_rows, write_pending
from store.repository import DECISION_IDS, SqlUnitOfWork
from store.tables import DecisionRow, PolicyEventRow, RiskOutputRow

_EVENTS: Table = PolicyEventRow.__table__  # type: ignore[assignment]
_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        OutputEvaluated,
        AlertSurfaced,
        AlertSuppressed,
        AlertDelayed,
        DelayReleased,
        DelayCancelled,
        EscalationStarted,
        EscalationStepReached,
        AlertDismissed,
        AlertSnoozed,
        AlertAcknowledged,
        SilenceCreated,
        SilenceExpired,
    )
}
_TIMES = frozenset({"at", "active_until", "until", "starts_at", "ends_at", "created_at"})
_DELAY_KINDS = ("AlertDelayed", "DelayReleased", "DelayCancelled")
_CLOSING_KINDS = ("AlertDismissed", "AlertAcknowledged")


# The ladder queries of patients a snapshot has not read (open_escalations), built once with bound parameters.
def _kind_in(kinds: Sequence[str], table: FromClause = _EVENTS) -> ColumnElement[bool]:
    # The kinds are our own event class names, written into the SQL: a list of bound values would be re-expanded
    # on every execution.
    return table.c.kind.in_([literal_column(f"'{kind}'") for kind in kinds])


_SAME_ALERT = and_(_EVENTS.c.patient_key == bindparam("patient"), _EVENTS.c.alert_key == bindparam("alert_key"))
_AFTER_START = and_(_SAME_ALERT, _EVENTS.c.id > bindparam("start_id"))
_LADDER_START = (
    select(_EVENTS.c.id, _EVENTS.c.payload)
    .where(_SAME_ALERT, _EVENTS.c.kind == "EscalationStarted")
    .order_by(_EVENTS.c.id.desc())
    .limit(1)
)
_LADDER_STEPS = select(_EVENTS.c.payload).where(_AFTER_START, _EVENTS.c.kind == "EscalationStepReached")
_LADDER_CLOSED = select(_EVENTS.c.at).where(_AFTER_START, _kind_in(_CLOSING_KINDS)).order_by(_EVENTS.c.id).limit(1)


def _open_ladders() -> Select[Any]:
    later = aliased(_EVENTS)
    same_after = and_(
        later.c.patient_key == _EVENTS.c.patient_key,
        later.c.alert_key == _EVENTS.c.alert_key,
        later.c.id > _EVENTS.c.id,
    )
    # The newest ladder of each alert that no dismissal or acknowledgement has closed since it started.
    return (
        select(_EVENTS.c.patient_key, _EVENTS.c.alert_key)
        .where(
            _EVENTS.c.kind == "EscalationStarted",
            ~exists().where(same_after, _kind_in(("EscalationStarted", *_CLOSING_KINDS), later)),
        )
        .order_by(_EVENTS.c.id)
    )


_OPEN_LADDERS = _open_ladders()


def _kind(event: PolicyEvent) -> str:
    return type(event).__name__


# The payload is the event's fields as JSON; the codec goes by field name, which is unambiguous across the events.
def _encode(value: Any) -> Any:
    """The JSON-ready document of an event (or any value inside one): as plain_json would leave it, in one walk."""
    if type(value) in LEAVES:
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return plain_json(value.value)
    if isinstance(value, Match):
        return plain_json(value.model_dump(mode="json", exclude_none=True))
    names = _field_names(type(value))
    if names is not None:
        return {name: _encode(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    return plain_json(value)


# The field names of each dataclass met, by class (dataclasses.fields per value cost more than the encoding).
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(kind: type) -> tuple[str, ...] | None:
    if kind not in _FIELD_NAMES:
        _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind)) if is_dataclass(kind) else None
    return _FIELD_NAMES[kind]


def _decode_field(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if name in _TIMES:
        return datetime.fromisoformat(raw)
    decoder = _DECODERS.get(name)
    return decoder(raw) if decoder is not None else raw


_DECODERS: dict[str, Any] = {
    "indicator": Indicator,
    "reason": Reason,
    "reasons": lambda r: tuple(Reason(x) for x in r),
    "steps": lambda r: tuple(EscalationStep(**s) for s in r),
    "step": lambda r: EscalationStep(**r),
    "silence": lambda r: Silence(**{k: _decode_field(k, v) for k, v in r.items()}),
    "match": Match.model_validate,
}


def _decode(kind: str, payload: dict[str, Any]) -> PolicyEvent:
    event: PolicyEvent = _KINDS[kind](**{k: _decode_field(k, v) for k, v in payload.items()})
    return event


def _columns(event: PolicyEvent) -> dict[str, Any]:
    """The filterable columns of an event's row (see PolicyEventRow)."""
    if isinstance(event, SilenceCreated):
        s = event.silence
        return {"patient_key": s.patient, "alert_key": s.silence_id, "unit_id": s.unit_id, "until": s.ends_at}
    if isinstance(event, SilenceExpired):
        return {"patient_key": None, "alert_key": event.silence_id, "unit_id": None, "until": None}
    columns: dict[str, Any] = {"patient_key": event.patient, "alert_key": event.alert_key, "unit_id": None}
    if isinstance(event, AlertSurfaced):
        columns.update(unit_id=event.unit_id, until=event.active_until, interruptive=event.interruptive)
    elif isinstance(event, AlertDelayed | AlertSnoozed):
        columns["until"] = event.until
    return columns


def _event_rows(events: Sequence[PolicyEvent]) -> list[tuple[Any, ...]]:
    """The events' rows in EVENT_COLUMNS order, without the last column (the decision's id)."""
    rows = []
    for event in events:
        columns = _columns(event)
        rows.append(
            (
                *(event.at, _kind(event), columns["patient_key"], columns["alert_key"], columns["unit_id"]),
                *(columns.get("until"), columns.get("interruptive", False), _encode(event)),
            )
        )
    return rows


def record_events(
    session: Session, events: Sequence[PolicyEvent], decision_ids: Sequence[int | None] | None = None
) -> None:
    """Append events in order (the state reads "latest" by insertion order, as the in-memory state applies them),
    each with the decision that produced it when `decision_ids` (parallel to `events`) is given."""
    if not events:
        return
    ids = list(decision_ids) if decision_ids is not None else [None] * len(events)
    if len(ids) != len(events):
        raise ValueError("decision_ids must be parallel to events")
    # Any hook call's events still waiting go in first: insertion order is the state's order.
    write_pending(session)
    rows = [(*row, decision_id) for row, decision_id in zip(_event_rows(events), ids, strict=True)]
    driver = driver_of(session)
    cursor = cursor_of(session)
    try:
        # In order (the "newest" reads go by id): on PostgreSQL the ordered form that returns the ids draws them so.
        insert_rows(cursor, driver, _EVENTS, EVENT_COLUMNS, rows, returning_ids=driver.postgres)
    finally:
        cursor.close()
    _appended(session, events)


def _appended(session: Session, events: Sequence[PolicyEvent]) -> None:
    session.info[_WRITES] = session.info.get(_WRITES, 0) + 1
    ahead: dict[str, list[Any]] | None = held_for_transaction(session, _READ_AHEAD)
    if ahead:
        # A snapshot read ahead no longer holds the whole history of a patient whose events were just appended.
        for event in events:
            ahead.pop(_columns(event)["patient_key"], None)
    if any(isinstance(event, SilenceCreated | SilenceExpired) for event in events):
        session.info.pop(_SILENCE_ROWS, None)
    own: list[tuple[str | None, datetime]] | None = None
    for event in events:
        if isinstance(event, AlertSurfaced) and event.interruptive:
            if own is None:
                own = _own_interruptive(session)
            own.append((event.unit_id, event.at))
    # Ladders and holds arm their durable timers in this same transaction: never one without the other.
    arm_timers(session, events)


def patient_lock_key(patient_key: str) -> int:
    return int.from_bytes(hashlib.sha256(b"cds.policy_state:" + patient_key.encode()).digest()[:8], "big", signed=True)


# The patient's snapshot: for each alert key of the patient (found by a loose index scan, one seek per key), the
# newest event of every kind the state reads, the rungs and first closing event of its newest ladder, and the
# newest dismissal times. One statement, a handful of index seeks per alert key, whatever the history's length.
_HEAD_KINDS = (
    "OutputEvaluated",
    "AlertSurfaced",
    "AlertDismissed",
    "AlertSnoozed",
    "AlertDelayed",
    "DelayReleased",
    "DelayCancelled",
    "EscalationStarted",
)
# How many of the patient's newest dismissal times the snapshot holds (dismissals_since beyond them asks again).
_DISMISSALS_LOADED = 50
# h0, h1, ... are the newest ids of the kinds of _HEAD_KINDS, in that order; the newest ladder start's column is the
# one `ladders` starts from; c0 and c1 the first dismissal and acknowledgement after that start. The text is built
# from these module constants only, never from a value (hence the noqa marks).
_LADDER_HEAD = f"h{_HEAD_KINDS.index('EscalationStarted')}"
_HEAD_COLUMNS = ",\n".join(
    f"  (SELECT max(e.id) FROM policy_events e WHERE e.patient_key = :p AND e.alert_key = keys.k\n"  # noqa: S608
    f"   AND e.kind = '{kind}') AS h{i}"
    for i, kind in enumerate(_HEAD_KINDS)
)
_HEAD_IDS = "\n  UNION ALL ".join(f"SELECT h{i} FROM heads" for i in range(len(_HEAD_KINDS)))  # noqa: S608
_SNAPSHOT = f"""
WITH RECURSIVE keys(k) AS (
  SELECT min(alert_key) FROM policy_events WHERE patient_key = :p
  UNION ALL
  SELECT (SELECT min(e.alert_key) FROM policy_events e WHERE e.patient_key = :p AND e.alert_key > keys.k)
  FROM keys WHERE keys.k IS NOT NULL
),
heads AS (
  SELECT k,
{_HEAD_COLUMNS}
  FROM keys WHERE k IS NOT NULL
),
ladders AS (
  SELECT k, {_LADDER_HEAD} AS started,
  (SELECT min(e.id) FROM policy_events e WHERE e.patient_key = :p AND e.alert_key = heads.k
   AND e.kind = 'AlertDismissed' AND e.id > heads.{_LADDER_HEAD}) AS c0,
  (SELECT min(e.id) FROM policy_events e WHERE e.patient_key = :p AND e.alert_key = heads.k
   AND e.kind = 'AlertAcknowledged' AND e.id > heads.{_LADDER_HEAD}) AS c1
  FROM heads WHERE {_LADDER_HEAD} IS NOT NULL
)
SELECT 'h', e.id, e.kind, e.alert_key, e.at, e.payload FROM policy_events e
WHERE {{ids_in}}(
  {_HEAD_IDS}
){{ids_end}}
UNION ALL
SELECT 's', e.id, e.kind, e.alert_key, e.at, e.payload FROM ladders l JOIN policy_events e
  ON e.patient_key = :p AND e.alert_key = l.k AND e.kind = 'EscalationStepReached' AND e.id > l.started
UNION ALL
SELECT 'c', e.id, e.kind, e.alert_key, e.at, NULL FROM policy_events e
WHERE {{ids_in}}(SELECT c0 FROM ladders UNION ALL SELECT c1 FROM ladders){{ids_end}}
UNION ALL
SELECT 'd', 0, 'AlertDismissed', NULL, d.at, NULL FROM (
  SELECT at FROM policy_events WHERE patient_key = :p AND kind = 'AlertDismissed'
  ORDER BY at DESC LIMIT {_DISMISSALS_LOADED}
) d
"""  # noqa: S608
# The events picked by id, as each backend finds them by primary key: PostgreSQL's planner, which cannot know how
# few ids the subquery gives, was measured hash-joining `id IN (subquery)` against a scan of the whole table (every
# patient's history, on every call); an array of the ids is looked up in the key's index.
_SNAPSHOT_SQL = {
    False: _SNAPSHOT.format(ids_in="e.id IN ", ids_end=""),
    True: _SNAPSHOT.format(ids_in="e.id = ANY(ARRAY", ids_end=")"),
}
_DISMISSALS_SINCE_SQL = (
    "SELECT count(*) FROM policy_events WHERE patient_key = :p AND kind = 'AlertDismissed' AND at >= :since"
)
_INTERRUPTIVE_SQL = (
    "SELECT count(*) FROM policy_events WHERE {unit} AND kind = 'AlertSurfaced' AND interruptive = :yes"
    " AND at >= :since"
)
_INTERRUPTIVE_IN_UNIT_SQL = _INTERRUPTIVE_SQL.format(unit="unit_id = :unit")
_INTERRUPTIVE_NO_UNIT_SQL = _INTERRUPTIVE_SQL.format(unit="unit_id IS NULL")
_SILENCES_SQL = (
    "SELECT kind, payload FROM policy_events WHERE kind IN ('SilenceCreated', 'SilenceExpired')"
    " AND alert_key IN (SELECT alert_key FROM policy_events WHERE kind = 'SilenceCreated' AND until > :now)"
    " ORDER BY id"
)
_PATIENT_LOCK = "SELECT pg_advisory_xact_lock(%s)"
# Several patients' locks in one statement, taken in the array's order (a function scan yields it in order).
_PATIENT_LOCKS = "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k"
# The patients a transaction holds the lock of, and the snapshots read ahead for it (prepare_patients): each
# (transaction, ...), so neither outlives the transaction it was taken or read in.
_LOCKED = "cds.policy_events.locked"
_READ_AHEAD = "cds.policy_events.read_ahead"
# The silences' rows as a transaction read them: (transaction, the `now` read for, rows); see _silences.
_SILENCE_ROWS = "cds.policy_events.silences"
# The interruptive cards a transaction appended, (transaction, [(unit, at)]), and the counts of everybody else's it
# read, (transaction, {(unit, since): count}); see SqlPolicyState._interruptive.
_OWN_INTERRUPTIVE = "cds.policy_events.own_interruptive"
_INTERRUPTIVE_READ = "cds.policy_events.interruptive_read"


def prepare_patients(session: Session, patient_keys: Collection[str]) -> None:
    """Lock the patients a transaction is about to decide on, and read their snapshots ahead, in one round trip.

    On PostgreSQL a hook call otherwise locks its patient and reads its history in two round trips of its own, one
    after the other, before it can decide: 16 of a batch of 8 calls' 35 statements. Here the batch's patients are
    locked in one statement, in the same order as one by one (sorted), and their snapshots are sent with it in one
    pipeline; each call then finds its patient locked and its snapshot read. A snapshot is used once, by the first
    read of that patient, and dropped when events of the patient are appended before it (its history changed).
    The locks come first in the pipeline, so the reads see what the locks protect. On SQLite, where a statement is
    no round trip and the transaction holds the only writer lock, this does nothing."""
    driver = driver_of(session)
    if not driver.postgres or not patient_keys:
        return
    cursor = cursor_of(session)  # first: it begins the transaction the locks and reads are kept for
    keys = _unlocked(session, patient_keys)
    if not keys:
        cursor.close()
        return
    waiting = pending_rows(session)
    ahead: dict[str, list[Any]] = of_transaction(session, _READ_AHEAD, dict)
    connection = cursor.connection
    reads: list[tuple[str, Any]] = []
    try:
        with connection.pipeline():
            cursor.execute(_PATIENT_LOCKS, ([patient_lock_key(key) for key in keys],))
            for key in keys:
                if waiting is not None and waiting.has_patient(key):
                    continue  # its history includes rows still waiting: read when asked, after they are written
                read = connection.cursor()
                read.execute(driver.sql(_SNAPSHOT_SQL[True]), {"p": key})
                reads.append((key, read))
        for key, read in reads:
            ahead[key] = list(read.fetchall())
    finally:
        for _, read in reads:
            read.close()
        cursor.close()
    _now_locked(session, keys)


def _unlocked(session: Session, patient_keys: Collection[str]) -> list[str]:
    """The patients among `patient_keys` the transaction has not locked yet, in the order every transaction takes
    them: sorted, so two calls naming the same patients never wait on each other (no deadlock)."""
    return sorted(set(patient_keys) - of_transaction(session, _LOCKED, set))


def _now_locked(session: Session, patient_keys: Collection[str]) -> None:
    of_transaction(session, _LOCKED, set).update(patient_keys)


def _own_interruptive(session: Session) -> list[tuple[str | None, datetime]]:
    own: list[tuple[str | None, datetime]] = of_transaction(session, _OWN_INTERRUPTIVE, list)
    return own


@orm_events.listens_for(Session, "after_soft_rollback")
def _forget_reads(session: Session, _previous: Any) -> None:
    # A rollback (a savepoint's included) may take back appended cards or silences: read again.
    # A savepoint's rollback also releases the locks taken inside it: lock again when asked.
    for key in (_OWN_INTERRUPTIVE, _INTERRUPTIVE_READ, _SILENCE_ROWS, _LOCKED, _READ_AHEAD):
        session.info.pop(key, None)


# Bumped on a session by every append, so a state read after its own transaction appended reads afresh.
_WRITES = "cds.policy_events.writes"


class _Row:
    """One stored event as read, decoded on first use."""

    __slots__ = ("_event", "at", "id", "kind", "payload")

    def __init__(self, id: int, kind: str, at: datetime | None, payload: Any) -> None:
        self.id, self.kind, self.at, self.payload = id, kind, at, payload
        self._event: PolicyEvent | None = None

    def event(self, driver: Driver) -> PolicyEvent:
        if self._event is None:
            self._event = _decode(self.kind, driver.read_document(self.payload))
        return self._event


@dataclass
class _Alert:
    heads: dict[str, _Row] = field(default_factory=dict)
    steps: list[_Row] = field(default_factory=list)
    closings: list[_Row] = field(default_factory=list)


@dataclass
class _Snapshot:
    alerts: dict[str, _Alert]
    dismissed_at: list[datetime]  # newest first, at most _DISMISSALS_LOADED

    def alert(self, key: str) -> _Alert | None:
        return self.alerts.get(key)


class SqlPolicyState:
    """`PolicyState` over `policy_events`, inside the caller's transaction. A patient's history is read once, in
    one statement, the first time the snapshot is asked about that patient (one hook call); the unit's budget and
    the silences are one small query each, remembered for the snapshot's life.

    `patient_keys` are the patients the caller will decide on: on PostgreSQL each is locked for the transaction,
    so two hook calls for the same patient read, decide and append one after the other (on SQLite the transaction
    already holds the only writer lock)."""

    def __init__(self, session: Session, *, patient_keys: Collection[str] = ()) -> None:
        self._session = session
        self._driver = driver_of(session)
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._patients: dict[str, _Snapshot] = {}
        self._writes = session.info.get(_WRITES, 0)
        if self._driver.postgres and patient_keys:
            cursor = cursor_of(session)  # first: it begins the transaction the locks are kept for
            try:
                keys = _unlocked(session, patient_keys)
                for key in keys:
                    cursor.execute(_PATIENT_LOCK, (patient_lock_key(key),))
                _now_locked(session, keys)
            finally:
                cursor.close()

    def _fresh(self) -> None:
        writes = self._session.info.get(_WRITES, 0)
        if writes != self._writes:
            self._memo.clear()
            self._patients.clear()
            self._writes = writes

    def _remember(self, key: tuple[Any, ...], compute: Any) -> Any:
        self._fresh()
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _rows(self, statement: str, parameters: dict[str, Any]) -> list[Any]:
        cursor = cursor_of(self._session)
        try:
            cursor.execute(self._driver.sql(statement), parameters)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _snapshot(self, patient: str) -> _Snapshot:
        self._fresh()
        found = self._patients.get(patient)
        if found is None:
            waiting = pending_rows(self._session)
            if waiting is not None and waiting.has_patient(patient):
                write_pending(self._session)  # this patient's history includes rows still waiting (store.pending)
            found = self._patients[patient] = self._load(patient)
        return found

    def _load(self, patient: str) -> _Snapshot:
        alerts: dict[str, _Alert] = {}
        dismissed_at: list[datetime] = []
        instant = self._driver.read_instant
        ahead: dict[str, list[Any]] | None = held_for_transaction(self._session, _READ_AHEAD)
        rows = ahead.pop(patient, None) if ahead else None
        if rows is None:
            rows = self._rows(_SNAPSHOT_SQL[self._driver.postgres], {"p": patient})
        for source, id_, kind, alert_key, at, payload in rows:
            when = instant(at)
            if source == "d":
                assert when is not None
                dismissed_at.append(when)
                continue
            alert = alerts.setdefault(alert_key, _Alert())
            row = _Row(id_, kind, when, payload)
            if source == "h":
                alert.heads[kind] = row
            elif source == "s":
                alert.steps.append(row)
            else:
                alert.closings.append(row)
        dismissed_at.sort(reverse=True)
        return _Snapshot(alerts, dismissed_at)

    def _head(self, patient: str, alert_key: str, kind: str) -> PolicyEvent | None:
        alert = self._snapshot(patient).alert(alert_key)
        row = None if alert is None else alert.heads.get(kind)
        return None if row is None else row.event(self._driver)

    def last_seen(self, patient: str, alert_key: str) -> OutputEvaluated | None:
        found = self._head(patient, alert_key, "OutputEvaluated")
        return found if isinstance(found, OutputEvaluated) else None

    def last_surfaced(self, patient: str, alert_key: str) -> AlertSurfaced | None:
        found = self._head(patient, alert_key, "AlertSurfaced")
        return found if isinstance(found, AlertSurfaced) else None

    def last_dismissal(self, patient: str, alert_key: str) -> AlertDismissed | None:
        found = self._head(patient, alert_key, "AlertDismissed")
        return found if isinstance(found, AlertDismissed) else None

    def dismissals_since(self, patient: str, since: datetime) -> int:
        times = self._snapshot(patient).dismissed_at
        if len(times) < _DISMISSALS_LOADED or since > times[-1]:
            # Every dismissal at or after `since` is among those loaded.
            return sum(1 for at in times if at >= since)
        count: int = self._remember(
            ("dismissals", patient, since),
            lambda: self._count(_DISMISSALS_SINCE_SQL, {"p": patient, "since": self._driver.instant(since)}),
        )
        return count

    def _count(self, statement: str, parameters: dict[str, Any]) -> int:
        rows = self._rows(statement, parameters)
        return int(rows[0][0] or 0) if rows else 0

    def last_snooze(self, patient: str, alert_key: str) -> AlertSnoozed | None:
        found = self._head(patient, alert_key, "AlertSnoozed")
        return found if isinstance(found, AlertSnoozed) else None

    def pending_delay(self, patient: str, alert_key: str) -> AlertDelayed | None:
        # A delay is pending until a later release or cancellation: only the newest of the three kinds counts.
        alert = self._snapshot(patient).alert(alert_key)
        if alert is None:
            return None
        rows = [row for kind in _DELAY_KINDS if (row := alert.heads.get(kind)) is not None]
        if not rows:
            return None
        newest = max(rows, key=lambda row: row.id).event(self._driver)
        return newest if isinstance(newest, AlertDelayed) else None

    def escalation(self, patient: str, alert_key: str) -> Escalation | None:
        alert = self._snapshot(patient).alert(alert_key)
        start = None if alert is None else alert.heads.get("EscalationStarted")
        if alert is None or start is None:
            return None
        # The first rung is reached at the start; a later rung counts only within this ladder (after its start).
        reached = max([1, *(int(self._driver.read_document(s.payload)["index"]) + 1 for s in alert.steps)])
        closed = min(alert.closings, key=lambda row: row.id, default=None)
        started = start.event(self._driver)
        assert isinstance(started, EscalationStarted)
        return Escalation(started=started, reached=reached, acknowledged_at=None if closed is None else closed.at)

    def _escalation_elsewhere(self, patient: str, alert_key: str) -> Escalation | None:
        """A ladder of a patient this snapshot has not read: its own three queries, not the patient's history."""
        alert = {"patient": patient, "alert_key": alert_key}
        start = self._session.execute(_LADDER_START, alert).first()
        if start is None:
            return None
        after = {**alert, "start_id": start.id}
        steps = self._session.scalars(_LADDER_STEPS, after).all()
        reached = max([1, *(int(p["index"]) + 1 for p in steps)])
        closed = self._session.execute(_LADDER_CLOSED, after).first()
        started = _decode("EscalationStarted", start.payload)
        assert isinstance(started, EscalationStarted)
        return Escalation(started=started, reached=reached, acknowledged_at=None if closed is None else closed.at)

    def open_escalations(self) -> tuple[Escalation, ...]:
        def compute() -> tuple[Escalation, ...]:
            out = []
            for row in self._session.execute(_OPEN_LADDERS):
                if row.patient_key in self._patients:
                    escalation = self.escalation(row.patient_key, row.alert_key)
                else:
                    escalation = self._escalation_elsewhere(row.patient_key, row.alert_key)
                if escalation is not None and escalation.open:
                    out.append(escalation)
            return tuple(out)

        escalations: tuple[Escalation, ...] = self._remember(("open_escalations",), compute)
        return escalations

    def active_alerts(self, patient: str, now: datetime) -> tuple[AlertSurfaced, ...]:
        snapshot = self._snapshot(patient)
        out = []
        for key in sorted(snapshot.alerts):
            alert = snapshot.alerts[key]
            row = alert.heads.get("AlertSurfaced")
            if row is None:
                continue
            surfaced = row.event(self._driver)
            if not isinstance(surfaced, AlertSurfaced) or not surfaced.active_until > now:
                continue
            # An alert stops firing when the same key was last seen in another band.
            seen = alert.heads.get("OutputEvaluated")
            seen_event = None if seen is None else seen.event(self._driver)
            if not isinstance(seen_event, OutputEvaluated) or seen_event.band == surfaced.band:
                out.append(surfaced)
        return tuple(out)

    def silences(self, now: datetime) -> tuple[Silence, ...]:
        silences: tuple[Silence, ...] = self._remember(("silences", now), lambda: self._silences(now))
        return silences

    def _silences(self, now: datetime) -> tuple[Silence, ...]:
        waiting = pending_rows(self._session)
        if waiting is not None and waiting.has_silences:
            write_pending(self._session)
        # Read once a transaction (a batch of hook calls): the rows read for an earlier `now` hold every silence
        # still active at a later one, and the fold below keeps only those. A silence event appended in the
        # transaction drops them (_appended); one created elsewhere meanwhile counts from the next transaction.
        transaction = self._session.get_transaction()
        read = self._session.info.get(_SILENCE_ROWS)
        if read is not None and read[0] is transaction and read[1] <= now:
            rows = read[2]
        else:
            rows = self._rows(_SILENCES_SQL, {"now": self._driver.instant(now)})
            self._session.info[_SILENCE_ROWS] = (transaction, now, rows)
        # Fold as the in-memory state does: a re-created silence replaces the earlier one, an expiry shortens it.
        folded: dict[str, Silence] = {}
        for kind, payload in rows:
            event = _decode(kind, self._driver.read_document(payload))
            if isinstance(event, SilenceCreated):
                folded[event.silence.silence_id] = event.silence
            elif isinstance(event, SilenceExpired) and event.silence_id in folded:
                silence = folded[event.silence_id]
                folded[event.silence_id] = replace(silence, ends_at=min(silence.ends_at, event.at))
        return tuple(s for s in folded.values() if s.active(now))

    def interruptive_count(self, unit_id: str | None, since: datetime) -> int:
        count: int = self._remember(("interruptive", unit_id, since), lambda: self._interruptive(unit_id, since))
        return count

    def _interruptive(self, unit_id: str | None, since: datetime) -> int:
        """The unit's interruptive cards since `since`: read once a transaction (a batch of hook calls), as the cards
        of everybody else, to which the cards the transaction itself appends are added as it appends them, written
        or still waiting (store.pending). Cards another transaction commits meanwhile count from the next one."""
        session = self._session
        mine = sum(1 for unit, at in _own_interruptive(session) if unit == unit_id and at >= since)
        others: int | None = of_transaction(session, _INTERRUPTIVE_READ, dict).get((unit_id, since))
        if others is None:
            statement = _INTERRUPTIVE_NO_UNIT_SQL if unit_id is None else _INTERRUPTIVE_IN_UNIT_SQL
            parameters: dict[str, Any] = {"yes": True, "since": self._driver.instant(since)}
            if unit_id is not None:
                parameters["unit"] = unit_id
            waiting = pending_rows(session)
            pending = waiting.interruptive_since(unit_id, since) if waiting is not None else 0
            # The stored count holds the transaction's own cards already written; the waiting ones are added.
            others = self._count(statement, parameters) + pending - mine
            # Kept for the transaction the count ran in (the query may have begun it).
            of_transaction(session, _INTERRUPTIVE_READ, dict)[(unit_id, since)] = others
        return others + mine


def record_evaluations(session: Session, hook_instance: str, evaluations: Sequence[Evaluation]) -> None:
    """Store each evaluation's trace and ladder on its decision (unless they went in with it), and append its events
    tagged with that decision. `evaluations` are in the order of the hook call's results, which is the order its
    decisions were inserted."""
    # The repository leaves the call's rows on the session (store.pending); anything else asks the database.
    recorded = session.info.get(DECISION_IDS)
    traced = False
    pending: PendingCall | None = None
    decision_ids: Sequence[int] = ()
    if recorded is not None and recorded[0] == hook_instance:
        pending, traced = recorded[1], recorded[2]
        if len(pending.decisions) != len(evaluations):
            raise RuntimeError("the hook call's stored decisions do not line up with its evaluations")
        if traced and pending.decision_ids is None:
            # The common case: the events wait with the call's other rows, tagged by the index of their decision.
            events = [event for evaluation in evaluations for event in evaluation.events]
            indexes = [index for index, evaluation in enumerate(evaluations) for _ in evaluation.events]
            waiting_rows(session).add_events(pending, _event_rows(events), indexes)
            _appended(session, events)
            if session.get_nested_transaction() is not None:
                write_pending(session)  # a savepoint holds no waiting rows (store.pending)
            return
        if pending.decision_ids is None:
            write_pending(session)  # the traces below are set by the decisions' ids
        assert pending.decision_ids is not None
        decision_ids = pending.decision_ids
    else:
        decision_ids = session.scalars(_DECISION_IDS_OF_CALL, {"hook_instance": hook_instance}).all()
    if len(decision_ids) != len(evaluations):
        raise RuntimeError("the hook call's stored decisions do not line up with its evaluations")
    events = []
    tags: list[int | None] = []
    traces = []
    for decision_id, evaluation in zip(decision_ids, evaluations, strict=True):
        if not traced:
            traces.append(
                {
                    "id": decision_id,
                    "trace": evaluation.trace.to_dict(),
                    "escalation": _encode(evaluation.decision.escalation),
                }
            )
        events.extend(evaluation.events)
        tags.extend([decision_id] * len(evaluation.events))
    if traces:
        driver = driver_of(session)
        cursor = cursor_of(session)
        try:
            cursor.executemany(
                driver.sql(_SET_TRACE),
                [
                    {
                        "trace": driver.document(t["trace"]),
                        "escalation": driver.document(t["escalation"]),
                        "id": t["id"],
                    }
                    for t in traces
                ],
            )
        finally:
            cursor.close()
    record_events(session, events, tags)


_DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]
_DECISION_IDS_OF_CALL = (
    select(DecisionRow.id)
    .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
    .where(RiskOutputRow.hook_instance == bindparam("hook_instance"))
    .order_by(DecisionRow.id)
)
_SET_TRACE = "UPDATE decisions SET trace = :trace, escalation = :escalation WHERE id = :id"


def explain_decision(session: Session, decision_id: int) -> dict[str, Any] | None:
    """What GET /decisions/{id}/explain shows; identifiers of the patient are left out."""
    found = session.execute(
        select(DecisionRow, RiskOutputRow)
        .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
        .where(DecisionRow.id == decision_id)
    ).one_or_none()
    if found is None:
        return None
    decision, output = found
    return {
        "decision": {
            "id": decision.id,
            "action": decision.action,
            "reasons": list(decision.reasons),
            "route": decision.route,
            "decided_at": decision.decided_at.isoformat(),
            "delay_until": decision.delay_until.isoformat() if decision.delay_until else None,
            "escalation": decision.escalation or [],
        },
        "policy": {"id": decision.policy_id, "version": decision.policy_version},
        "risk_output": {
            "scorer_id": output.scorer_id,
            "scorer_version": output.scorer_version,
            "band": output.band,
            "score": output.score,
            "partial": output.partial,
        },
        # None for a decision of a simple policy (pass-through), which tries no routes.
        "trace": decision.trace,
    }


class SqlPolicyUnitOfWork(SqlUnitOfWork):
    """The store's unit of work plus the policy state, so a hook call reads the state, decides and appends its
    events in the one transaction that records its outputs, decisions and cards."""

    def policy_state(self, *, patient_keys: Collection[str] = ()) -> SqlPolicyState:
        return SqlPolicyState(self._require_session(), patient_keys=patient_keys)

    def record_evaluations(self, hook_instance: str, evaluations: Sequence[Evaluation]) -> None:
        record_evaluations(self._require_session(), hook_instance, evaluations)

    def prepare_batch(self, *, patient_keys: Collection[str] = (), hook_instances: Collection[str] = ()) -> None:
        """The patients this transaction's calls will decide on locked and read ahead (see prepare_patients), then
        the store's own preparation."""
        prepare_patients(self._require_session(), patient_keys)
        super().prepare_batch(patient_keys=patient_keys, hook_instances=hook_instances)

    def note_fhir_patient(self, patient_id: str | None) -> None:
        """The EHR's Patient id of this hook call (None: it named none), for the escalation timers its events arm
        (notify.live_timers)."""
        self._require_session().info[FHIR_PATIENT_ID] = patient_id

    def record_events(self, events: Iterable[PolicyEvent]) -> None:
        record_events(self._require_session(), list(events))

    def explain_decision(self, decision_id: int) -> dict[str, Any] | None:
        return explain_decision(self._require_session(), decision_id)

    def newest_response_at(self, patient_key: str, alert_key: str) -> datetime | None:
        """The clinician's time of the newest response (action or CDS Hooks feedback) on this patient's alert."""
        # Imported here: the action ledger writes its events through this module.
        from store.feedback_store import SqlActionLedger

        return SqlActionLedger(self._require_session(), self.repo).newest_action_at(patient_key, alert_key)
