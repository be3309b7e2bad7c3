"""The SQL adapter of feedback.action_service: clinicians' actions in `card_actions`, their audit records (never the
comment in clear) and policy events, in the transaction of the store's unit of work."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import polars as pl
from sqlalchemy import Table, func, select
from sqlalchemy import null as sa_null
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from feedback.actions import ClinicianAction
from feedback.report import CARD_SCHEMA, RESPONSE_SCHEMA, FeedbackFrames
from policy.events import PolicyEvent
from store.documents import instant
from store.policy_state import patient_lock_key, record_events
from store.port import AuditEntry, StoredCard
from store.repository import SqlRepository, SqlUnitOfWork
from store.tables import CardActionRow, CardRow, DecisionRow, FeedbackRow, PolicyEventRow, RiskOutputRow

_ACTIONS: Table = CardActionRow.__table__  # type: ignore[assignment]
AUDIT_KIND = "card-action"


def comment_digest(comment: str) -> str:
    """What the audit record keeps of a comment: proof of which text was stored, not the text."""
    return hashlib.sha256(comment.encode("utf-8")).hexdigest()


def action_audit_payload(action: ClinicianAction, *, superseded: bool, known: bool) -> dict[str, Any]:
    return {
        "card_uuid": action.card_uuid,
        "action": str(action.action),
        "acted_at": instant(action.at),
        "user_pseudonym": action.user_pseudonym,
        "user_role": action.user_role,
        "reason_code": None if action.reason is None else str(action.reason),
        "comment_sha256": None if action.comment is None else comment_digest(action.comment),
        "until": None if action.until is None else instant(action.until),
        "escalate_to": action.escalate_to,
        "card_known": known,
        "superseded": superseded,
    }


class SqlActionLedger:
    def __init__(self, session: Session, repo: SqlRepository) -> None:
        self._session = session
        self._repo = repo
        self._dialect = session.get_bind().dialect.name

    def find_card(self, uuid: str) -> StoredCard | None:
        return self._repo.find_card(uuid)

    def newest_action_at(self, patient_key: str, alert_key: str) -> datetime | None:
        if self._dialect == "postgresql":
            # The same lock hook calls take for this patient: actions and decisions on one patient go one at a time,
            # so "newest" cannot change between this read and the insert.
            self._session.execute(select(func.pg_advisory_xact_lock(patient_lock_key(patient_key))))
        action: datetime | None = self._session.scalar(
            select(func.max(_ACTIONS.c.acted_at)).where(
                _ACTIONS.c.patient_key == patient_key, _ACTIONS.c.alert_key == alert_key
            )
        )
        # CDS Hooks feedback on the same alert counts too: an acknowledgement through either path settles it.
        feedback: datetime | None = self._session.scalar(
            select(func.max(FeedbackRow.outcome_at))
            .join(CardRow, CardRow.uuid == FeedbackRow.card_uuid)
            .join(DecisionRow, CardRow.decision_id == DecisionRow.id)
            .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
            .where(RiskOutputRow.patient_key == patient_key, RiskOutputRow.scorer_id == alert_key)
        )
        found = [t for t in (action, feedback) if t is not None]
        return max(found) if found else None

    def add_action(self, action: ClinicianAction, card: StoredCard | None, *, superseded: bool, now: datetime) -> bool:
        links: dict[str, Any] = {}
        if card is not None:
            found = self._session.execute(
                select(DecisionRow.id, DecisionRow.risk_output_id)
                .join(CardRow, CardRow.decision_id == DecisionRow.id)
                .where(CardRow.uuid == card.uuid)
            ).one()
            links = {
                "decision_id": found.id,
                "risk_output_id": found.risk_output_id,
                "policy_id": card.policy_id,
                "policy_version": card.policy_version,
                "patient_key": card.patient_key,
                "alert_key": card.scorer_id,
            }
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        statement = (
            insert(_ACTIONS)
            .values(
                card_uuid=action.card_uuid,
                action=str(action.action),
                acted_at=action.at,
                received_at=now,
                user_pseudonym=action.user_pseudonym,
                user_role=action.user_role,
                reason_code=None if action.reason is None else str(action.reason),
                comment=action.comment,
                until=action.until,
                escalate_to=action.escalate_to,
                card_known=card is not None,
                superseded=superseded,
                **links,
            )
            .on_conflict_do_nothing(index_elements=["card_uuid", "action", "acted_at"])
            .returning(_ACTIONS.c.id)
        )
        if self._session.execute(statement).first() is None:
            return False
        self._repo.append_audit(
            AuditEntry(
                actor=action.user_pseudonym,
                kind=AUDIT_KIND,
                subject=f"card:{action.card_uuid}",
                at=now,
                payload=action_audit_payload(action, superseded=superseded, known=card is not None),
            )
        )
        return True

    def record_events(self, events: Iterable[PolicyEvent]) -> None:
        record_events(self._session, list(events))


class SqlActionUnitOfWork:
    """The action ledger inside one of the store's units of work (one session, one transaction)."""

    actions: SqlActionLedger

    def __init__(self, inner: SqlUnitOfWork) -> None:
        self._inner = inner

    def __enter__(self) -> Self:
        self._inner.__enter__()
        # Same package as SqlUnitOfWork: the ledger shares its session so audit, action and events commit together.
        self.actions = SqlActionLedger(self._inner._require_session(), self._inner.repo)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._inner.__exit__(exc_type, exc, tb)

    def commit(self) -> None:
        self._inner.commit()


def action_unit_of_work(factory: Callable[[], object]) -> Callable[[], SqlActionUnitOfWork]:
    """Units of work for recording actions, over the store's unit-of-work factory (the pipeline's)."""

    def make() -> SqlActionUnitOfWork:
        inner = factory()
        if not isinstance(inner, SqlUnitOfWork):
            raise TypeError("recording actions needs the SQL store")
        return SqlActionUnitOfWork(inner)

    return make


def load_feedback_frames(
    uow: object, *, since: datetime | None = None, until: datetime | None = None
) -> FeedbackFrames:
    """Cards shown in [since, until) and every response in that window (CDS Hooks feedback and actions), as the
    report's frames. Call inside `with uow:` of the store's unit of work."""
    if not isinstance(uow, SqlUnitOfWork):
        raise TypeError("the feedback report reads the SQL store")
    session = uow._require_session()
    unit = (
        select(PolicyEventRow.decision_id, func.max(PolicyEventRow.unit_id).label("unit_id"))
        .where(PolicyEventRow.kind == "AlertSurfaced", PolicyEventRow.decision_id.is_not(None))
        .group_by(PolicyEventRow.decision_id)
        .subquery()
    )
    cards_query = (
        select(
            CardRow.uuid.label("card_uuid"),
            CardRow.created_at,
            RiskOutputRow.patient_key,
            RiskOutputRow.scorer_id,
            DecisionRow.route,
            unit.c.unit_id,
            RiskOutputRow.score,
        )
        .join(DecisionRow, CardRow.decision_id == DecisionRow.id)
        .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
        .outerjoin(unit, unit.c.decision_id == DecisionRow.id)
        .where(*_window(CardRow.created_at, since, until))
    )
    known = select(CardRow.uuid)
    feedback_query = select(
        FeedbackRow.card_uuid,
        FeedbackRow.outcome_at.label("at"),
        FeedbackRow.outcome.label("kind"),
        sa_null().label("role"),
        # Read in SQL (json_extract / ->>): no JSON document is parsed in Python, whatever the volume.
        FeedbackRow.override_reason["reason"]["code"].as_string().label("reason"),
        FeedbackRow.card_uuid.in_(known).label("card_known"),
    ).where(*_window(FeedbackRow.outcome_at, since, until))
    actions_query = select(
        CardActionRow.card_uuid,
        CardActionRow.acted_at.label("at"),
        CardActionRow.action.label("kind"),
        CardActionRow.user_role.label("role"),
        CardActionRow.reason_code.label("reason"),
        CardActionRow.card_known,
    ).where(*_window(CardActionRow.acted_at, since, until))
    cards = _frame(session.execute(cards_query).all(), CARD_SCHEMA)
    responses = [*session.execute(feedback_query), *session.execute(actions_query)]
    return FeedbackFrames(cards, _frame(responses, RESPONSE_SCHEMA))


def _window(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    return [
        c
        for c in (None if since is None else column >= since, None if until is None else column < until)
        if c is not None
    ]


def _frame(rows: Sequence[Any], schema: dict[str, Any]) -> pl.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pl.DataFrame(
        {name: list(values) for name, values in zip(schema, columns, strict=True)}, schema=schema, strict=False
    )
