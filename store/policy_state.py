"""The policy state in the database: policy events appended to `policy_events`, and `SqlPolicyState` answering the
engine's `PolicyState` queries from them, reading only the rows each query needs."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import fields, is_dataclass, replace
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
    func,
    literal_column,
    select,
    update,
)
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
from store.documents import plain_json
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


# The state's queries, built once with bound parameters: building a statement costs several times running it.
def _kind_in(kinds: Sequence[str], table: FromClause = _EVENTS) -> ColumnElement[bool]:
    # The kinds are our own event class names, written into the SQL: a list of bound values would be re-expanded
    # on every execution.
    return table.c.kind.in_([literal_column(f"'{kind}'") for kind in kinds])


def _newest_of(kinds: tuple[str, ...]) -> Select[Any]:
    return (
        select(_EVENTS.c.kind, _EVENTS.c.payload)
        .where(
            _EVENTS.c.patient_key == bindparam("patient"),
            _EVENTS.c.alert_key == bindparam("alert_key"),
            _EVENTS.c.kind == kinds[0] if len(kinds) == 1 else _kind_in(kinds),
        )
        .order_by(_EVENTS.c.id.desc())
        .limit(1)
    )


_NEWEST: dict[tuple[str, ...], Select[Any]] = {}
_COUNT = select(func.count()).select_from(_EVENTS)
_DISMISSALS_SINCE = _COUNT.where(
    _EVENTS.c.patient_key == bindparam("patient"),
    _EVENTS.c.kind == "AlertDismissed",
    _EVENTS.c.at >= bindparam("since"),
)
_INTERRUPTIVE = (
    _EVENTS.c.kind == "AlertSurfaced",
    _EVENTS.c.interruptive.is_(True),
    _EVENTS.c.at >= bindparam("since"),
)
_INTERRUPTIVE_IN_UNIT = _COUNT.where(_EVENTS.c.unit_id == bindparam("unit_id"), *_INTERRUPTIVE)
_INTERRUPTIVE_NO_UNIT = _COUNT.where(_EVENTS.c.unit_id.is_(None), *_INTERRUPTIVE)
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
_ACTIVE_ALERTS = select(_EVENTS.c.payload).where(
    _EVENTS.c.id.in_(
        select(func.max(_EVENTS.c.id))
        .where(_EVENTS.c.patient_key == bindparam("patient"), _EVENTS.c.kind == "AlertSurfaced")
        .group_by(_EVENTS.c.alert_key)
    ),
    _EVENTS.c.until > bindparam("now"),
)
# Candidates: silences some version of which runs past now; older ones cannot be active.
_SILENCES = (
    select(_EVENTS.c.id, _EVENTS.c.kind, _EVENTS.c.at, _EVENTS.c.payload)
    .where(
        _kind_in(("SilenceCreated", "SilenceExpired")),
        _EVENTS.c.alert_key.in_(
            select(_EVENTS.c.alert_key).where(_EVENTS.c.kind == "SilenceCreated", _EVENTS.c.until > bindparam("now"))
        ),
    )
    .order_by(_EVENTS.c.id)
)


def _kind(event: PolicyEvent) -> str:
    return type(event).__name__


# The payload is the event's fields as JSON; the codec goes by field name, which is unambiguous across the events.
def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Match):
        return value.model_dump(mode="json", exclude_none=True)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    return value


def _decode_field(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if name in _TIMES:
        return datetime.fromisoformat(raw)
    decoders: dict[str, Any] = {
        "indicator": Indicator,
        "reason": Reason,
        "reasons": lambda r: tuple(Reason(x) for x in r),
        "steps": lambda r: tuple(EscalationStep(**s) for s in r),
        "step": lambda r: EscalationStep(**r),
        "silence": lambda r: Silence(**{k: _decode_field(k, v) for k, v in r.items()}),
        "match": Match.model_validate,
    }
    decoder = decoders.get(name)
    return decoder(raw) if decoder is not None else raw


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
    rows = [
        {
            "until": None,
            "interruptive": False,
            **_columns(event),
            "at": event.at,
            "kind": _kind(event),
            "payload": plain_json(_encode(event)),
            "decision_id": decision_id,
        }
        for event, decision_id in zip(events, ids, strict=True)
    ]
    session.execute(_EVENTS.insert(), rows)
    # Ladders and holds arm their durable timers in this same transaction: never one without the other.
    arm_timers(session, events)


def patient_lock_key(patient_key: str) -> int:
    return int.from_bytes(hashlib.sha256(b"cds.policy_state:" + patient_key.encode()).digest()[:8], "big", signed=True)


class SqlPolicyState:
    """`PolicyState` over `policy_events`, inside the caller's transaction. Each answer is one indexed query,
    remembered for the life of this snapshot (one hook call), so a call's outputs do not repeat reads.

    `patient_keys` are the patients the caller will decide on: on PostgreSQL each is locked for the transaction,
    so two hook calls for the same patient read, decide and append one after the other (on SQLite the transaction
    already holds the only writer lock)."""

    def __init__(self, session: Session, *, patient_keys: Collection[str] = ()) -> None:
        self._session = session
        self._memo: dict[tuple[Any, ...], Any] = {}
        if session.get_bind().dialect.name == "postgresql":
            # Sorted so two calls naming the same patients always lock in the same order (no deadlock).
            for key in sorted(set(patient_keys)):
                session.execute(select(func.pg_advisory_xact_lock(patient_lock_key(key))))

    def _remember(self, key: tuple[Any, ...], compute: Any) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _latest(self, patient: str, alert_key: str, kinds: tuple[str, ...]) -> PolicyEvent | None:
        def compute() -> PolicyEvent | None:
            query = _NEWEST.get(kinds)
            if query is None:
                query = _NEWEST[kinds] = _newest_of(kinds)
            row = self._session.execute(query, {"patient": patient, "alert_key": alert_key}).first()
            return None if row is None else _decode(row.kind, row.payload)

        found: PolicyEvent | None = self._remember(("latest", patient, alert_key, kinds), compute)
        return found

    def _count(self, query: Select[Any], parameters: dict[str, Any]) -> int:
        return int(self._session.scalar(query, parameters) or 0)

    def last_seen(self, patient: str, alert_key: str) -> OutputEvaluated | None:
        found = self._latest(patient, alert_key, ("OutputEvaluated",))
        return found if isinstance(found, OutputEvaluated) else None

    def last_surfaced(self, patient: str, alert_key: str) -> AlertSurfaced | None:
        found = self._latest(patient, alert_key, ("AlertSurfaced",))
        return found if isinstance(found, AlertSurfaced) else None

    def last_dismissal(self, patient: str, alert_key: str) -> AlertDismissed | None:
        found = self._latest(patient, alert_key, ("AlertDismissed",))
        return found if isinstance(found, AlertDismissed) else None

    def dismissals_since(self, patient: str, since: datetime) -> int:
        count: int = self._remember(
            ("dismissals", patient, since),
            lambda: self._count(_DISMISSALS_SINCE, {"patient": patient, "since": since}),
        )
        return count

    def last_snooze(self, patient: str, alert_key: str) -> AlertSnoozed | None:
        found = self._latest(patient, alert_key, ("AlertSnoozed",))
        return found if isinstance(found, AlertSnoozed) else None

    def pending_delay(self, patient: str, alert_key: str) -> AlertDelayed | None:
        # A delay is pending until a later release or cancellation: only the newest of the three kinds counts.
        found = self._latest(patient, alert_key, _DELAY_KINDS)
        return found if isinstance(found, AlertDelayed) else None

    def escalation(self, patient: str, alert_key: str) -> Escalation | None:
        escalation: Escalation | None = self._remember(
            ("escalation", patient, alert_key), lambda: self._escalation(patient, alert_key)
        )
        return escalation

    def _escalation(self, patient: str, alert_key: str) -> Escalation | None:
        alert = {"patient": patient, "alert_key": alert_key}
        start = self._session.execute(_LADDER_START, alert).first()
        if start is None:
            return None
        after = {**alert, "start_id": start.id}
        steps = self._session.scalars(_LADDER_STEPS, after).all()
        # The first rung is reached at the start; a later rung counts only within this ladder (after its start).
        reached = max([1, *(int(p["index"]) + 1 for p in steps)])
        closed = self._session.execute(_LADDER_CLOSED, after).first()
        started = _decode("EscalationStarted", start.payload)
        assert isinstance(started, EscalationStarted)
        return Escalation(started=started, reached=reached, acknowledged_at=None if closed is None else closed.at)

    def open_escalations(self) -> tuple[Escalation, ...]:
        def compute() -> tuple[Escalation, ...]:
            out = []
            for row in self._session.execute(_OPEN_LADDERS):
                escalation = self.escalation(row.patient_key, row.alert_key)
                if escalation is not None and escalation.open:
                    out.append(escalation)
            return tuple(out)

        escalations: tuple[Escalation, ...] = self._remember(("open_escalations",), compute)
        return escalations

    def active_alerts(self, patient: str, now: datetime) -> tuple[AlertSurfaced, ...]:
        def compute() -> tuple[AlertSurfaced, ...]:
            rows = self._session.execute(_ACTIVE_ALERTS, {"patient": patient, "now": now}).all()
            decoded = [_decode("AlertSurfaced", r.payload) for r in rows]
            alerts = sorted((a for a in decoded if isinstance(a, AlertSurfaced)), key=lambda a: a.alert_key)
            out = []
            for alert in alerts:
                # An alert stops firing when the same key was last seen in another band.
                seen = self.last_seen(patient, alert.alert_key)
                if seen is None or seen.band == alert.band:
                    out.append(alert)
            return tuple(out)

        alerts: tuple[AlertSurfaced, ...] = self._remember(("active", patient, now), compute)
        return alerts

    def silences(self, now: datetime) -> tuple[Silence, ...]:
        silences: tuple[Silence, ...] = self._remember(("silences", now), lambda: self._silences(now))
        return silences

    def _silences(self, now: datetime) -> tuple[Silence, ...]:
        rows = self._session.execute(_SILENCES, {"now": now}).all()
        # Fold as the in-memory state does: a re-created silence replaces the earlier one, an expiry shortens it.
        folded: dict[str, Silence] = {}
        for row in rows:
            event = _decode(row.kind, row.payload)
            if isinstance(event, SilenceCreated):
                folded[event.silence.silence_id] = event.silence
            elif isinstance(event, SilenceExpired) and event.silence_id in folded:
                silence = folded[event.silence_id]
                folded[event.silence_id] = replace(silence, ends_at=min(silence.ends_at, event.at))
        return tuple(s for s in folded.values() if s.active(now))

    def interruptive_count(self, unit_id: str | None, since: datetime) -> int:
        query = _INTERRUPTIVE_NO_UNIT if unit_id is None else _INTERRUPTIVE_IN_UNIT
        count: int = self._remember(
            ("interruptive", unit_id, since), lambda: self._count(query, {"unit_id": unit_id, "since": since})
        )
        return count


def record_evaluations(session: Session, hook_instance: str, evaluations: Sequence[Evaluation]) -> None:
    """Store each evaluation's trace and ladder on its decision, and append its events tagged with that decision.
    `evaluations` are in the order of the hook call's results, which is the order its decisions were inserted."""
    # The repository leaves the ids it just inserted on the session; anything else asks the database.
    recorded = session.info.get(DECISION_IDS)
    if recorded is not None and recorded[0] == hook_instance:
        decision_ids: Sequence[int] = recorded[1]
    else:
        decision_ids = session.scalars(_DECISION_IDS_OF_CALL, {"hook_instance": hook_instance}).all()
    if len(decision_ids) != len(evaluations):
        raise RuntimeError("the hook call's stored decisions do not line up with its evaluations")
    events: list[PolicyEvent] = []
    tags: list[int | None] = []
    traces = []
    for decision_id, evaluation in zip(decision_ids, evaluations, strict=True):
        traces.append(
            {
                "decision_id": decision_id,
                "new_trace": evaluation.trace.to_dict(),
                "new_escalation": _encode(evaluation.decision.escalation),
            }
        )
        events.extend(evaluation.events)
        tags.extend([decision_id] * len(evaluation.events))
    if traces:
        session.execute(_SET_TRACE, traces)
    record_events(session, events, tags)


_DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]
_DECISION_IDS_OF_CALL = (
    select(DecisionRow.id)
    .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
    .where(RiskOutputRow.hook_instance == bindparam("hook_instance"))
    .order_by(DecisionRow.id)
)
_SET_TRACE = (
    update(_DECISIONS)
    .where(_DECISIONS.c.id == bindparam("decision_id"))
    .values(trace=bindparam("new_trace"), escalation=bindparam("new_escalation"))
)


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

    def note_fhir_patient(self, patient_id: str) -> None:
        """The EHR's Patient id of this hook call, for the escalation timers its events arm (notify.live_timers)."""
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
