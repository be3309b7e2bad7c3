"""The informaticist's side of live candidates: propose one for a service, move it through its stages, kill it, and
compare what it decided with what the live calls served. The routes in api/candidates.py call only this."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shadow.arms import ArmFactory
from shadow.comparison import compare
from shadow.stages import BucketBy, CandidateDraft, CandidateRecord, Stage, StageChange, check_fraction


class CandidateStore(Protocol):
    def create(self, draft: CandidateDraft, *, actor: str, comment: str, at: datetime) -> CandidateRecord: ...

    def change_stage(
        self, candidate_id: int, target: Stage, *, actor: str, comment: str, at: datetime, fraction: float | None = None
    ) -> CandidateRecord: ...

    def kill(self, candidate_id: int, *, actor: str, comment: str, at: datetime) -> CandidateRecord: ...

    def get(self, candidate_id: int) -> CandidateRecord: ...

    def candidates(self, service_id: str | None = None) -> list[CandidateRecord]: ...

    def history(self, candidate_id: int) -> list[StageChange]: ...

    def shadow_decisions(self, candidate_id: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    """What a candidate is checked against: the service's scorers and its live policy."""

    scorers: Sequence[str]
    live_policy: str


class UnknownServiceError(LookupError):
    pass


class CandidateRollout:
    def __init__(
        self,
        store: CandidateStore,
        arms: ArmFactory,
        services: Mapping[str, ServiceFacts],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._arms = arms
        self._services = services
        self._clock = clock

    def propose(
        self,
        service_id: str,
        *,
        spec: str,
        model_version: str | None,
        fraction: float,
        bucket_by: BucketBy,
        actor: str,
        comment: str,
    ) -> CandidateRecord:
        """A new candidate, in shadow. Raises UnknownServiceError, CandidateInvalidError or StageChangeRefused."""
        service = self._services.get(service_id)
        if service is None:
            raise UnknownServiceError(service_id)
        check_fraction(fraction)
        kind = self._arms.kind_of(spec, model_version, scorers=service.scorers, live_policy=service.live_policy)
        draft = CandidateDraft(service_id, kind, spec, model_version, fraction, bucket_by)
        return self._store.create(draft, actor=actor, comment=comment, at=self._clock())

    def move(
        self, candidate_id: int, stage: Stage, *, actor: str, comment: str, fraction: float | None = None
    ) -> CandidateRecord:
        if stage is Stage.OFF:
            return self.kill(candidate_id, actor=actor, comment=comment)
        return self._store.change_stage(
            candidate_id, stage, actor=actor, comment=comment, at=self._clock(), fraction=fraction
        )

    def kill(self, candidate_id: int, *, actor: str, comment: str) -> CandidateRecord:
        return self._store.kill(candidate_id, actor=actor, comment=comment, at=self._clock())

    def candidates(self, service_id: str | None = None) -> list[CandidateRecord]:
        return self._store.candidates(service_id)

    def get(self, candidate_id: int) -> tuple[CandidateRecord, list[StageChange]]:
        return self._store.get(candidate_id), self._store.history(candidate_id)

    def comparison(self, candidate_id: int) -> dict[str, Any]:
        record = self._store.get(candidate_id)
        return {"candidate": record.id, "stage": str(record.stage), **compare(self._store.shadow_decisions(record.id))}
