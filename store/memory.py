"""An in-memory fake of the persistence port for unit tests: same idempotency and audit chain, no database."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from store import audit
from store.documents import card_uuid, feedback_audit_payload, hook_call_audit_payload, plain_json
from store.port import (
    GENESIS_HASH,
    AuditEntry,
    AuditKind,
    AuditRecord,
    ChainCheck,
    Feedback,
    HookCall,
    RecordedHookCall,
    StoredCard,
)


@dataclass
class MemoryState:
    """What a database would hold; tests may inspect (or tamper with) it directly."""

    hook_calls: dict[str, HookCall] = field(default_factory=dict)
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    cards: dict[str, StoredCard] = field(default_factory=dict)
    feedback: dict[tuple[str, str, str], Feedback] = field(default_factory=dict)
    audit_log: list[AuditRecord] = field(default_factory=list)


class InMemoryRepository:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def record_hook_call(self, call: HookCall) -> RecordedHookCall:
        previous = self._state.responses.get(call.hook_instance)
        if previous is not None:
            return RecordedHookCall(response=copy.deepcopy(previous), created=False)
        cards: dict[str, StoredCard] = {}
        for result in call.results:
            if result.card is None:
                continue
            uuid = card_uuid(result.card)
            if uuid in self._state.cards or uuid in cards:
                raise ValueError("card uuid already stored")  # the database's unique constraint, mirrored
            output, decision = result.output, result.decision
            cards[uuid] = StoredCard(
                uuid=uuid,
                hook_instance=call.hook_instance,
                service_id=call.service_id,
                body=plain_json(result.card),
                created_at=call.received_at,
                action=str(decision.action),
                reasons=tuple(str(reason) for reason in decision.reasons),
                policy_id=decision.policy_id,
                policy_version=decision.policy_version,
                route=decision.route,
                scorer_id=output.scorer_id,
                scorer_version=output.scorer_version,
                band=output.band,
                score=output.score,
                patient_key=call.patient_key,
                encounter_id=call.encounter_id,
            )
        response = plain_json(call.response)
        self._state.hook_calls[call.hook_instance] = call
        self._state.responses[call.hook_instance] = response
        self._state.cards.update(cards)
        self.append_audit(
            AuditEntry(
                actor=call.actor,
                kind=AuditKind.HOOK_CALL,
                subject=f"hook:{call.hook_instance}",
                at=call.received_at,
                payload=hook_call_audit_payload(call),
            )
        )
        return RecordedHookCall(response=copy.deepcopy(response), created=True)

    def hook_call_response(self, hook_instance: str) -> dict[str, Any] | None:
        return copy.deepcopy(self._state.responses.get(hook_instance))

    def find_card(self, uuid: str) -> StoredCard | None:
        return self._state.cards.get(uuid)

    def record_feedback(self, feedback: Feedback) -> bool:
        key = (feedback.card_uuid, str(feedback.outcome), audit.instant_text(feedback.outcome_at))
        if key in self._state.feedback:
            return False
        self._state.feedback[key] = feedback
        self.append_audit(
            AuditEntry(
                actor=feedback.actor,
                kind=AuditKind.FEEDBACK,
                subject=f"card:{feedback.card_uuid}",
                at=feedback.received_at,
                payload=feedback_audit_payload(feedback),
            )
        )
        return True

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        log = self._state.audit_log
        record = audit.extend(entry, log[-1].seq, log[-1].hash) if log else audit.extend(entry, 0, GENESIS_HASH)
        log.append(record)
        return record

    def audit_records(self, after_seq: int = 0, limit: int | None = None) -> list[AuditRecord]:
        records = sorted((r for r in self._state.audit_log if r.seq > after_seq), key=lambda r: r.seq)
        return records if limit is None else records[:limit]

    def verify_audit_chain(self) -> ChainCheck:
        hashes = {record.hash for record in self._state.audit_log}
        return audit.verify_chain(self.audit_records(), hashes.__contains__)


class InMemoryUnitOfWork:
    """Works on a copy of the committed state; commit publishes the copy, anything else discards it."""

    repo: InMemoryRepository

    def __init__(self, state: MemoryState | None = None) -> None:
        self.state = state if state is not None else MemoryState()
        self.commits = 0
        self._working: MemoryState | None = None

    def __enter__(self) -> Self:
        self._working = copy.deepcopy(self.state)
        self.repo = InMemoryRepository(self._working)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._working = None

    def commit(self) -> None:
        if self._working is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        self.state = copy.deepcopy(self._working)
        self.commits += 1

    def rollback(self) -> None:
        if self._working is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        self._working = copy.deepcopy(self.state)
        self.repo = InMemoryRepository(self._working)
