"""The relational schema as typed SQLAlchemy models. Adapters only: the domain never imports this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

from store.columns import JsonDocument, UtcDateTime

# Named constraints make migrations deterministic: the same names on SQLite and PostgreSQL, and Alembic can
# drop or alter a constraint later without guessing a database-generated name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_ID = 128  # identifiers from outside (hook instances, pseudonyms, service ids)
_HASH = 64  # hex sha256
_UUID = 36


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 -- SQLAlchemy reads this class attribute by name
        datetime: UtcDateTime(),
        dict[str, Any]: JsonDocument,
        list[Any]: JsonDocument,
    }


class HookCallRow(Base):
    """One answered CDS Hooks call; the response is kept so a repeated hookInstance gets the same answer."""

    __tablename__ = "hook_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    hook_instance: Mapped[str] = mapped_column(String(_ID), unique=True)
    service_id: Mapped[str] = mapped_column(String(_ID))
    hook: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(_ID))
    patient_key: Mapped[str | None] = mapped_column(String(_ID))
    encounter_id: Mapped[str | None] = mapped_column(String(_ID))
    response: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]


class RiskOutputRow(Base):
    __tablename__ = "risk_outputs"
    __table_args__ = (Index("ix_risk_outputs_patient_scorer_as_of", "patient_key", "scorer_id", "as_of"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Not a foreign key: replay and shadow runs score without a live hook call.
    hook_instance: Mapped[str | None] = mapped_column(String(_ID), index=True)
    scorer_id: Mapped[str] = mapped_column(String(64))
    scorer_version: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(32))
    partial: Mapped[bool] = mapped_column(Boolean)
    missing: Mapped[list[Any]]
    explanation: Mapped[list[Any]]
    features: Mapped[dict[str, Any]]
    input_hash: Mapped[str] = mapped_column(String(_HASH))
    as_of: Mapped[datetime]
    patient_key: Mapped[str | None] = mapped_column(String(_ID))
    encounter_id: Mapped[str | None] = mapped_column(String(_ID))
    recorded_at: Mapped[datetime]


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    risk_output_id: Mapped[int] = mapped_column(ForeignKey("risk_outputs.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]]
    policy_id: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(32))
    route: Mapped[str] = mapped_column(String(64))
    inputs_hash: Mapped[str] = mapped_column(String(_HASH))
    decided_at: Mapped[datetime]
    delay_until: Mapped[datetime | None]
    # The routed policy's trace behind GET /decisions/{id}/explain, and the ladder an escalate decision started;
    # empty for simple policies (pass-through), which have no routes to explain.
    trace: Mapped[dict[str, Any] | None]
    escalation: Mapped[list[Any] | None]

    risk_output: Mapped[RiskOutputRow] = relationship()


class CardRow(Base):
    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(_UUID), unique=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    hook_instance: Mapped[str] = mapped_column(String(_ID), index=True)
    service_id: Mapped[str] = mapped_column(String(_ID))
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    decision: Mapped[DecisionRow] = relationship()


class FeedbackRow(Base):
    """CDS Hooks feedback on a card; the unique key makes a resent feedback message a no-op."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("card_uuid", "outcome", "outcome_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Not a foreign key: feedback for an unknown card is still evidence worth keeping.
    card_uuid: Mapped[str] = mapped_column(String(_UUID))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_at: Mapped[datetime]
    accepted_suggestions: Mapped[list[Any]]
    override_reason: Mapped[dict[str, Any] | None]
    user_pseudonym: Mapped[str | None] = mapped_column(String(_ID))
    received_at: Mapped[datetime]


class CardActionRow(Base):
    """A clinician's action on a card through our own API (feedback.actions); unique per card, action and time, so
    a resent action is a no-op. Unknown cards are kept too, with no decision linked (`card_known` false)."""

    __tablename__ = "card_actions"
    __table_args__ = (
        UniqueConstraint("card_uuid", "action", "acted_at"),
        # The newest action on one patient's alert, which decides whether a late action is superseded.
        Index("ix_card_actions_patient_alert_acted_at", "patient_key", "alert_key", "acted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    card_uuid: Mapped[str] = mapped_column(String(_UUID))
    action: Mapped[str] = mapped_column(String(32))
    acted_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime]
    user_pseudonym: Mapped[str] = mapped_column(String(_ID))
    user_role: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    # Free text for the review team; the audit log and the report only ever see whether there was one.
    comment: Mapped[str | None] = mapped_column(Text)
    until: Mapped[datetime | None]
    escalate_to: Mapped[str | None] = mapped_column(String(64))
    card_known: Mapped[bool] = mapped_column(Boolean)
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    # What produced the card, copied at recording time so the report needs no joins back (null for unknown cards).
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)
    risk_output_id: Mapped[int | None] = mapped_column(ForeignKey("risk_outputs.id"))
    policy_id: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[str | None] = mapped_column(String(32))
    patient_key: Mapped[str | None] = mapped_column(String(_ID))
    alert_key: Mapped[str | None] = mapped_column(String(_ID))


class PolicyVersionRow(Base):
    """One immutable version of a policy document; activation is the only change a row may see."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(_HASH))
    author: Mapped[str] = mapped_column(String(_ID))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    activated_at: Mapped[datetime | None]


# At most one active version per policy, enforced by the database rather than by convention.
Index(
    "uq_policy_versions_one_active",
    PolicyVersionRow.policy_id,
    unique=True,
    # Written as text so both dialects render the same predicate (and Alembic compares it as written).
    sqlite_where=text("active"),
    postgresql_where=text("active"),
)


class ShadowResultRow(Base):
    """What a candidate policy or scorer would have done, recorded beside the live decision."""

    __tablename__ = "shadow_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[str] = mapped_column(String(_ID), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    risk_output_id: Mapped[int] = mapped_column(ForeignKey("risk_outputs.id"), index=True)
    would_be_decision: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime]


class AuditRow(Base):
    """Append-only, hash-chained audit log: each row's hash covers its content and the previous row's hash."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(_ID))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(256))
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(_HASH))
    hash: Mapped[str] = mapped_column(String(_HASH), index=True)


class EhrTokenUseRow(Base):
    """A bearer token an EHR has used, kept until it expires: the primary key makes a second use of the same
    token fail on insert, in whichever worker process it arrives."""

    __tablename__ = "ehr_token_uses"

    # sha256 of issuer and jti (api.security.replay.replay_key): the raw jti never needs storing.
    token_key: Mapped[str] = mapped_column(String(_HASH), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    first_seen_at: Mapped[datetime]


class TimerRow(Base):
    """A durable timer (a delay release, an escalation step): fires once at or after `due_at`, in whichever worker
    claims it first; `locked_by`/`locked_until` are the claiming worker's lease."""

    __tablename__ = "timers"
    # The claim query reads pending timers in due order; this index serves it without a scan.
    __table_args__ = (Index("ix_timers_state_due_at", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    # Unique for ever, not only while pending: a key fires at most once, so a replayed request cannot re-arm it.
    key: Mapped[str] = mapped_column(String(256), unique=True)
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_by: Mapped[str | None] = mapped_column(String(_ID))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]


class OutboxRow(Base):
    """A message to send, written in the same transaction as the change that caused it (transactional outbox);
    the dispatcher delivers it with retries and moves it to `dead` after the last attempt."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    # A configured target's name, not a URL: addresses and secrets stay in configuration, out of the database.
    target: Mapped[str] = mapped_column(String(_ID))
    payload: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str] = mapped_column(String(256), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(_ID))
    locked_until: Mapped[datetime | None]
    # A status code or exception type only: never a response body, which could echo clinical content.
    last_error: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class PolicyEventRow(Base):
    """One policy event (policy.events), appended in the transaction of the hook call or action that caused it.

    The policy state is read back from these rows; the columns beside the payload are what its queries filter on.
    """

    __tablename__ = "policy_events"
    __table_args__ = (
        # Latest event of a kind for one patient's alert (last seen, surfaced, dismissed, snoozed, delay, ladder).
        Index("ix_policy_events_patient_alert_kind", "patient_key", "alert_key", "kind", "id"),
        # Counts since an instant: dismissals per patient, interruptive cards per unit and shift. The second holds
        # the interruptive flag too, so the shift's count is read from the index alone, not from each row it counts.
        Index("ix_policy_events_patient_kind_at", "patient_key", "kind", "at"),
        Index("ix_policy_events_unit_kind_interruptive_at", "unit_id", "kind", "interruptive", "at"),
        # Silences still running and ladders started, without reading the whole log.
        Index("ix_policy_events_kind_until", "kind", "until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    patient_key: Mapped[str | None] = mapped_column(String(_ID))
    # The alert key; for silence events, the silence id (they are about no single alert).
    alert_key: Mapped[str | None] = mapped_column(String(_ID))
    unit_id: Mapped[str | None] = mapped_column(String(_ID))
    # When the event stops mattering, where it has such an end: an alert's active window, a delay, a snooze, a
    # silence. Lets the state read only rows still in force.
    until: Mapped[datetime | None]
    # A surfaced card above info, counted against the unit's budget.
    interruptive: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]]
    # The decision whose evaluation produced the event; clinicians' actions and silences have none.
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)


class CandidateRow(Base):
    """A live candidate (threshold, policy or model version) of one service and the stage it stands in
    (shadow.stages); every change of stage is a `candidate_stage_changes` row and an audit record."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[str] = mapped_column(String(_ID), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[str | None] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(16))
    fraction: Mapped[float] = mapped_column(Float)
    bucket_by: Mapped[str] = mapped_column(String(16))
    # Per-candidate salt of the canary's sticky hash buckets (shadow.canary); not a secret, never a patient value.
    salt: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(_ID))
    created_at: Mapped[datetime]
    changed_at: Mapped[datetime]


class CandidateStageChangeRow(Base):
    """One entry of a candidate's stage history: who, when, from and to which stage, and why."""

    __tablename__ = "candidate_stage_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    fraction: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(_ID))
    comment: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class ShadowDecisionRow(Base):
    """What a candidate decided for one risk output of a live hook call, beside what the call actually served.

    Shadow rows were never shown; canary rows (`served`) are the decisions the call answered with, with the bucket
    that put the call in the canary.
    """

    __tablename__ = "shadow_decisions"
    __table_args__ = (Index("ix_shadow_decisions_candidate_id_id", "candidate_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    # Not a foreign key: the hook call's row commits first, and a shadow row must never hold up the live one.
    hook_instance: Mapped[str] = mapped_column(String(_ID), index=True)
    service_id: Mapped[str] = mapped_column(String(_ID))
    stage: Mapped[str] = mapped_column(String(16))
    served: Mapped[bool] = mapped_column(Boolean)
    bucket: Mapped[float | None] = mapped_column(Float)
    scorer_id: Mapped[str] = mapped_column(String(64))
    band: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]]
    route: Mapped[str] = mapped_column(String(64))
    policy_id: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(32))
    # The decision the call served for the same output (null when the candidate's outputs did not pair up).
    live_action: Mapped[str | None] = mapped_column(String(16))
    live_reasons: Mapped[list[Any] | None]
    live_route: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime]


class ImmutableRowError(RuntimeError):
    """Raised when code tries to change a row that is only ever appended."""


_POLICY_MUTABLE = frozenset({"active", "activated_at"})


@event.listens_for(AuditRow, "before_update")
@event.listens_for(AuditRow, "before_delete")
def _refuse_audit_change(_mapper: Mapper[Any], _connection: Any, target: AuditRow) -> None:
    raise ImmutableRowError(f"audit record {target.seq} is append-only")


@event.listens_for(PolicyVersionRow, "before_update")
def _refuse_policy_edit(_mapper: Mapper[Any], _connection: Any, target: PolicyVersionRow) -> None:
    state = inspect(target)
    changed = {attr.key for attr in state.attrs if attr.history.has_changes()} - _POLICY_MUTABLE
    if changed:
        raise ImmutableRowError(f"policy versions are never edited in place (tried to change {sorted(changed)})")
