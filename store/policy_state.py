"""The policy state in the database: policy events appended to `policy_events`, and `SqlPolicyState` answering the
engine's `PolicyState` queries from them, reading only the rows each query needs."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, func, select, update
from sqlalchemy.orm import Session, aliased

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
from store.repository import SqlUnitOfWork
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

    def _latest(self, patient: str, alert_key: str, kinds: Sequence[str]) -> PolicyEvent | None:
        def compute() -> PolicyEvent | None:
            query = (
                select(_EVENTS.c.kind, _EVENTS.c.payload)
                .where(_EVENTS.c.patient_key == patient, _EVENTS.c.alert_key == alert_key, _EVENTS.c.kind.in_(kinds))
                .order_by(_EVENTS.c.id.desc())
                .limit(1)
            )
            row = self._session.execute(query).first()
            return None if row is None else _decode(row.kind, row.payload)

        found: PolicyEvent | None = self._remember(("latest", patient, alert_key, tuple(kinds)), compute)
        return found

    def _count(self, *where: ColumnElement[bool]) -> int:
        return int(self._session.scalar(select(func.count()).select_from(_EVENTS).where(*where)) or 0)

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
            lambda: self._count(
                _EVENTS.c.patient_key == patient, _EVENTS.c.kind == "AlertDismissed", _EVENTS.c.at >= since
            ),
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
        same = and_(_EVENTS.c.patient_key == patient, _EVENTS.c.alert_key == alert_key)
        start = self._session.execute(
            select(_EVENTS.c.id, _EVENTS.c.payload)
            .where(same, _EVENTS.c.kind == "EscalationStarted")
            .order_by(_EVENTS.c.id.desc())
            .limit(1)
        ).first()
        if start is None:
            return None
        after = and_(same, _EVENTS.c.id > start.id)
        steps = self._session.scalars(
            select(_EVENTS.c.payload).where(after, _EVENTS.c.kind == "EscalationStepReached")
        ).all()
        # The first rung is reached at the start; a later rung counts only within this ladder (after its start).
        reached = max([1, *(int(p["index"]) + 1 for p in steps)])
        closed = self._session.execute(
            select(_EVENTS.c.at).where(after, _EVENTS.c.kind.in_(_CLOSING_KINDS)).order_by(_EVENTS.c.id).limit(1)
        ).first()
        started = _decode("EscalationStarted", start.payload)
        assert isinstance(started, EscalationStarted)
        return Escalation(started=started, reached=reached, acknowledged_at=None if closed is None else closed.at)

    def open_escalations(self) -> tuple[Escalation, ...]:
        def compute() -> tuple[Escalation, ...]:
            later = aliased(_EVENTS)
            same_after = and_(
                later.c.patient_key == _EVENTS.c.patient_key,
                later.c.alert_key == _EVENTS.c.alert_key,
                later.c.id > _EVENTS.c.id,
            )
            # The newest ladder of each alert that no dismissal or acknowledgement has closed since it started.
            query = (
                select(_EVENTS.c.patient_key, _EVENTS.c.alert_key)
                .where(
                    _EVENTS.c.kind == "EscalationStarted",
                    ~exists().where(same_after, later.c.kind.in_(("EscalationStarted", *_CLOSING_KINDS))),
                )
                .order_by(_EVENTS.c.id)
            )
            out = []
            for row in self._session.execute(query):
                escalation = self.escalation(row.patient_key, row.alert_key)
                if escalation is not None and escalation.open:
                    out.append(escalation)
            return tuple(out)

        escalations: tuple[Escalation, ...] = self._remember(("open_escalations",), compute)
        return escalations

    def active_alerts(self, patient: str, now: datetime) -> tuple[AlertSurfaced, ...]:
        def compute() -> tuple[AlertSurfaced, ...]:
            newest = (
                select(func.max(_EVENTS.c.id))
                .where(_EVENTS.c.patient_key == patient, _EVENTS.c.kind == "AlertSurfaced")
                .group_by(_EVENTS.c.alert_key)
            )
            rows = self._session.execute(
                select(_EVENTS.c.payload).where(_EVENTS.c.id.in_(newest), _EVENTS.c.until > now)
            ).all()
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
        # Candidates: silences some version of which runs past now; older ones cannot be active.
        candidates = select(_EVENTS.c.alert_key).where(_EVENTS.c.kind == "SilenceCreated", _EVENTS.c.until > now)
        rows = self._session.execute(
            select(_EVENTS.c.id, _EVENTS.c.kind, _EVENTS.c.at, _EVENTS.c.payload)
            .where(_EVENTS.c.kind.in_(("SilenceCreated", "SilenceExpired")), _EVENTS.c.alert_key.in_(candidates))
            .order_by(_EVENTS.c.id)
        ).all()
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
        unit = _EVENTS.c.unit_id.is_(None) if unit_id is None else _EVENTS.c.unit_id == unit_id
        count: int = self._remember(
            ("interruptive", unit_id, since),
            lambda: self._count(
                unit, _EVENTS.c.kind == "AlertSurfaced", _EVENTS.c.interruptive.is_(True), _EVENTS.c.at >= since
            ),
        )
        return count


def record_evaluations(session: Session, hook_instance: str, evaluations: Sequence[Evaluation]) -> None:
    """Store each evaluation's trace and ladder on its decision, and append its events tagged with that decision.
    `evaluations` are in the order of the hook call's results, which is the order its decisions were inserted."""
    decision_ids = session.scalars(
        select(DecisionRow.id)
        .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
        .where(RiskOutputRow.hook_instance == hook_instance)
        .order_by(DecisionRow.id)
    ).all()
    if len(decision_ids) != len(evaluations):
        raise RuntimeError("the hook call's stored decisions do not line up with its evaluations")
    events: list[PolicyEvent] = []
    tags: list[int | None] = []
    for decision_id, evaluation in zip(decision_ids, evaluations, strict=True):
        session.execute(
            update(DecisionRow)
            .where(DecisionRow.id == decision_id)
            .values(trace=evaluation.trace.to_dict(), escalation=_encode(evaluation.decision.escalation))
        )
        events.extend(evaluation.events)
        tags.extend([decision_id] * len(evaluation.events))
    record_events(session, events, tags)


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

    def record_events(self, events: Iterable[PolicyEvent]) -> None:
        record_events(self._require_session(), list(events))

    def explain_decision(self, decision_id: int) -> dict[str, Any] | None:
        return explain_decision(self._require_session(), decision_id)
