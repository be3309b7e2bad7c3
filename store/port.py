"""The persistence port: plain records in and out, and the Repository/UnitOfWork protocols adapters implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self

from policy.port import Decision
from scoring.port import RiskOutput

GENESIS_HASH = "0" * 64


class AuditKind(StrEnum):
    """What an audit record is about; later issues add their own kinds here."""

    HOOK_CALL = "hook-call"
    FEEDBACK = "feedback"


class ChainFault(StrEnum):
    """Why the audit chain does not verify at a given sequence number."""

    EDITED = "edited"
    REMOVED = "removed"
    REORDERED = "reordered"


class FeedbackOutcome(StrEnum):
    """CDS Hooks 2.0 feedback outcomes."""

    ACCEPTED = "accepted"
    OVERRIDDEN = "overridden"


@dataclass(frozen=True, slots=True)
class ScoredDecision:
    """One risk output, the decision taken on it, and the card sent for it (a JSON-ready CDS Hooks card) if any."""

    output: RiskOutput
    decision: Decision
    card: Mapping[str, Any] | None = None
    # A routed policy's trace of the decision (what GET /decisions/{id}/explain shows), stored with it and with
    # the decision's escalation ladder; None for a simple policy's decision, which tries no routes.
    trace: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HookCall:
    """Everything recorded for one answered hook call, written in one transaction."""

    hook_instance: str
    service_id: str
    hook: str
    actor: str
    received_at: datetime
    response: Mapping[str, Any]
    results: Sequence[ScoredDecision] = ()
    # Pseudonymous key (never a raw MRN) and the encounter the call was about.
    patient_key: str | None = None
    encounter_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedHookCall:
    """The response to send: the stored one when the hookInstance had been answered before (created False)."""

    response: dict[str, Any]
    created: bool


@dataclass(frozen=True, slots=True)
class StoredCard:
    """A card as sent, with the decision and score behind it, for feedback and lockouts to refer back to."""

    uuid: str
    hook_instance: str
    service_id: str
    body: dict[str, Any]
    created_at: datetime
    action: str
    reasons: tuple[str, ...]
    policy_id: str
    policy_version: str
    route: str
    scorer_id: str
    scorer_version: str
    band: str
    score: float | None
    patient_key: str | None
    encounter_id: str | None


@dataclass(frozen=True, slots=True)
class Feedback:
    card_uuid: str
    outcome: FeedbackOutcome
    outcome_at: datetime
    received_at: datetime
    # Who sent it (the authenticated client), for the audit record.
    actor: str
    accepted_suggestions: Sequence[Mapping[str, Any]] = ()
    override_reason: Mapping[str, Any] | None = None
    user_pseudonym: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What to append; the store assigns the sequence number and the hashes."""

    actor: str
    kind: str
    subject: str
    at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: datetime
    actor: str
    kind: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The result of verifying the audit chain. `head_hash` can be written down elsewhere: it is what proves
    later that no record was cut off the end, which the chain alone cannot show."""

    checked: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    fault: ChainFault | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None


class Repository(Protocol):
    def record_hook_call(self, call: HookCall) -> RecordedHookCall:
        """Store a hook call with its risk outputs, decisions, cards and one audit record; a hookInstance seen
        before stores nothing and returns the earlier response."""
        ...

    def hook_call_response(self, hook_instance: str) -> dict[str, Any] | None: ...

    def find_card(self, uuid: str) -> StoredCard | None: ...

    def record_feedback(self, feedback: Feedback) -> bool:
        """Store feedback and audit it; returns False (and stores nothing) when the same feedback was stored."""
        ...

    def append_audit(self, entry: AuditEntry) -> AuditRecord: ...

    def audit_records(self, after_seq: int = 0, limit: int | None = None) -> list[AuditRecord]: ...

    def verify_audit_chain(self) -> ChainCheck: ...


class UnitOfWork(Protocol):
    """One transaction: `with uow: ...; uow.commit()`. Leaving the block without commit rolls back."""

    @property
    def repo(self) -> Repository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...
