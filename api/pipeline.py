"""The hook pipeline: prefetch → canonical context → risk outputs → decisions → cards, recorded as one unit.

Routes call `HookPipeline.handle`; nothing here knows about HTTP. Replay and shadow mode call the same scorers and
policies through their own drivers, never a second implementation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from api.cards import render_card
from api.catalog import ServiceDefinition
from cdsctl.logs import get_logger
from clinical.model import ClinicalContext
from clinical.normalise import normalise_prefetch
from policy.port import Policy
from scoring.port import RiskOutput, Scorer
from store.port import HookCall, ScoredDecision, UnitOfWork

log = get_logger(__name__)


class UnknownComponentError(LookupError):
    """A service names a scorer or policy that is not loaded: a configuration error, found at start-up."""


class HookPipeline:
    def __init__(
        self,
        *,
        scorers: Mapping[str, Scorer],
        policies: Mapping[str, Policy],
        unit_of_work: Callable[[], UnitOfWork],
        salt: str,
        validation: str = "fast",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._scorers = scorers
        self._policies = policies
        self._unit_of_work = unit_of_work
        self._salt = salt
        self._validation = validation
        self._clock = clock

    def unit_of_work(self) -> UnitOfWork:
        return self._unit_of_work()

    def check(self, service: ServiceDefinition) -> None:
        missing = [s for s in service.scorers if s not in self._scorers]
        if missing:
            raise UnknownComponentError(f"service {service.id!r} names unknown scorers {missing}")
        if service.policy not in self._policies:
            raise UnknownComponentError(f"service {service.id!r} names unknown policy {service.policy!r}")

    def handle(
        self, service: ServiceDefinition, request: Mapping[str, Any], actor: str = "anonymous"
    ) -> dict[str, Any]:
        hook_instance = str(request["hookInstance"])
        # A repeated hookInstance is the EHR retrying: the store keeps the first call's record and hands back its
        # response, so the retry gets the same cards and no second record. Retries are rare, so there is no read
        # before the work: that would cost every call a transaction.
        started = time.perf_counter()
        now = self._clock()
        context = normalise_prefetch(
            request.get("prefetch") or {}, validation=self._validation, now=now, salt=self._salt
        )
        outputs = self._score(service, context, now)
        policy = self._policies[service.policy]
        results = []
        for output in outputs:
            decision = policy.decide(output, context, now)
            card = render_card(decision, service=service, scorer_id=output.scorer_id)
            results.append(ScoredDecision(output=output, decision=decision, card=card))
        response = {"cards": [r.card for r in results if r.card is not None]}
        patient_key = context.patient.key if context.patient else None
        encounter_id = context.encounter.encounter_id if context.encounter else None
        with self._unit_of_work() as uow:
            recorded = uow.repo.record_hook_call(
                HookCall(
                    hook_instance=hook_instance,
                    service_id=service.id,
                    hook=service.hook,
                    actor=actor,
                    received_at=now,
                    response=response,
                    results=tuple(results),
                    patient_key=patient_key,
                    encounter_id=encounter_id,
                )
            )
            uow.commit()
        log.info(
            "hook.handled",
            service=service.id,
            patient=patient_key,
            outputs=len(outputs),
            cards=len(response["cards"]),
            issues=len(context.issues),
            replayed=not recorded.created,
            ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return recorded.response

    def _score(self, service: ServiceDefinition, context: ClinicalContext, now: datetime) -> tuple[RiskOutput, ...]:
        outputs: list[RiskOutput] = []
        for scorer_id in service.scorers:
            outputs.extend(self._scorers[scorer_id].score(context, now))
        return tuple(outputs)
