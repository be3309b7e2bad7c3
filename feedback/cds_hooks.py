"""CDS Hooks 2.0 feedback: validated, matched to the cards we sent, and recorded once however often it arrives."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from policy.events import AlertAcknowledged, AlertDismissed, PolicyEvent
from policy.port import Indicator
from store.port import Feedback, FeedbackOutcome, StoredCard, UnitOfWork


class _Tolerant(BaseModel):
    # Unknown members and `extension` are tolerated, as the specification asks.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Coding(_Tolerant):
    code: str = Field(min_length=1)
    system: str | None = None
    display: str | None = None


class OverrideReason(_Tolerant):
    reason: Coding | None = None
    user_comment: str | None = Field(default=None, alias="userComment")


class AcceptedSuggestion(_Tolerant):
    id: str = Field(min_length=1)


class FeedbackItem(_Tolerant):
    # The service's card ids are UUIDs (36 characters); anything longer cannot be one of ours, and is refused before
    # it reaches a column sized for them.
    card: str = Field(min_length=1, max_length=36)
    outcome: Literal["accepted", "overridden"]
    outcome_timestamp: AwareDatetime = Field(alias="outcomeTimestamp")
    accepted_suggestions: list[AcceptedSuggestion] | None = Field(default=None, alias="acceptedSuggestions")
    override_reason: OverrideReason | None = Field(default=None, alias="overrideReason")

    @model_validator(mode="after")
    def _outcome_members(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions")
        if self.outcome == "accepted" and self.override_reason is not None:
            raise ValueError("overrideReason belongs to an overridden outcome")
        if self.outcome == "overridden" and self.accepted_suggestions:
            raise ValueError("acceptedSuggestions belong to an accepted outcome")
        return self


class FeedbackRequest(_Tolerant):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=1000)


class FeedbackError(ValueError):
    """Feedback the service cannot accept; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class FeedbackReceipt:
    recorded: int
    duplicates: int
    unknown_cards: tuple[str, ...]


def parse_feedback(body: Any) -> FeedbackRequest:
    try:
        return FeedbackRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise FeedbackError(400, problems) from exc


def record_feedback(
    request: FeedbackRequest,
    *,
    service_id: str,
    unit_of_work: Callable[[], UnitOfWork],
    actor: str,
    now: datetime,
) -> FeedbackReceipt:
    """Record every item in one transaction. Items about cards this service never sent are kept too (as evidence,
    reported by the feedback report) and named in the receipt, so the caller can answer with a 4xx."""
    recorded = duplicates = 0
    unknown: list[str] = []
    with unit_of_work() as uow:
        for item in request.feedback:
            card = uow.repo.find_card(item.card)
            if card is None or card.service_id != service_id:
                unknown.append(item.card)
            else:
                _check_suggestions(item, card.body)
            # Read before this item is stored: feedback older than the newest response already recorded on the same
            # alert (out of order, or late) is kept but must not overwrite the state that newer response set.
            late = (
                card is not None
                and card.patient_key is not None
                and isinstance(uow, ResponseHistory)
                and _is_late(item.outcome_timestamp, uow.newest_response_at(card.patient_key, card.scorer_id))
            )
            is_new = uow.repo.record_feedback(_to_record(item, actor=actor, now=now))
            recorded += is_new
            duplicates += not is_new
            if is_new and not late and card is not None and isinstance(uow, PolicyEventSink):
                # What the clinician did steers the policy: a dismissal starts the lockout, an accepted suggestion
                # acknowledges the alert (and stops its escalation ladder). Same transaction as the feedback.
                uow.record_events(_policy_events(item, card))
        uow.commit()
    return FeedbackReceipt(recorded=recorded, duplicates=duplicates, unknown_cards=tuple(unknown))


@runtime_checkable
class PolicyEventSink(Protocol):
    """A unit of work that can append policy events (store.policy_state.SqlPolicyUnitOfWork)."""

    def record_events(self, events: Iterable[PolicyEvent]) -> None: ...


@runtime_checkable
class ResponseHistory(Protocol):
    """A unit of work that knows the newest clinician response on an alert (store.policy_state)."""

    def newest_response_at(self, patient_key: str, alert_key: str) -> datetime | None: ...


def _is_late(at: datetime, newest: datetime | None) -> bool:
    return newest is not None and at < newest


def _policy_events(item: FeedbackItem, card: StoredCard) -> list[PolicyEvent]:
    if card.patient_key is None:
        return []
    if item.outcome == "overridden":
        indicator = Indicator(card.body.get("indicator", Indicator.INFO.value))
        return [
            AlertDismissed(
                patient=card.patient_key,
                alert_key=card.scorer_id,
                band=card.band,
                indicator=indicator,
                at=item.outcome_timestamp,
            )
        ]
    return [AlertAcknowledged(patient=card.patient_key, alert_key=card.scorer_id, at=item.outcome_timestamp)]


def _check_suggestions(item: FeedbackItem, card_body: dict[str, Any]) -> None:
    if not item.accepted_suggestions:
        return
    offered = {s.get("uuid") for s in card_body.get("suggestions", ())}
    strangers = sorted(s.id for s in item.accepted_suggestions if s.id not in offered)
    if strangers:
        raise FeedbackError(422, f"card {item.card} offered no suggestion with uuid {', '.join(strangers)}")


def _to_record(item: FeedbackItem, *, actor: str, now: datetime) -> Feedback:
    accepted: Sequence[dict[str, Any]] = [s.model_dump(by_alias=True) for s in item.accepted_suggestions or ()]
    override = item.override_reason.model_dump(by_alias=True, exclude_none=True) if item.override_reason else None
    return Feedback(
        card_uuid=item.card,
        outcome=FeedbackOutcome(item.outcome),
        outcome_at=item.outcome_timestamp,
        received_at=now,
        actor=actor,
        accepted_suggestions=accepted,
        override_reason=override,
    )
