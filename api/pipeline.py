"""The hook pipeline: prefetch → canonical context → risk outputs → decisions → cards, recorded as one unit.

Routes call `HookPipeline.handle`; nothing here knows about HTTP. Replay and shadow mode call the same scorers and
policies through their own drivers, never a second implementation.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from api.cards import render_card
from api.catalog import ServiceDefinition
from api.metrics import DECISIONS, SCORER_ERRORS
from cdsctl.logs import get_logger
from clinical.model import ClinicalContext
from clinical.normalise import normalise_prefetch
from policy.context import PolicyContext
from policy.engine import Evaluation, RoutedPolicy
from policy.port import Decision, Policy
from policy.state import PolicyState
from scoring.port import RiskOutput, Scorer
from shadow.live import LiveShadow, NoShadow, ShadowPlan
from shadow.stages import CandidateRecord
from store.port import HookCall, RecordedHookCall, ScoredDecision, UnitOfWork

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HookCallInput:
    """A hook call as the pipeline takes it: the service called, the request (its prefetch completed), the actor."""

    service: ServiceDefinition
    request: Mapping[str, Any]
    actor: str = "anonymous"
    # The caller's context variables (log bindings): the call's work runs in them. None: the current ones.
    context: contextvars.Context | None = None

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args) if self.context is None else self.context.run(fn, *args)


# Stands in for a call's answer until it is recorded.
NO_ANSWER: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A call worked out up to its decisions: what recording it needs."""

    index: int
    input: HookCallInput
    started: float
    now: datetime
    context: ClinicalContext
    outputs: tuple[RiskOutput, ...]
    policy: Policy
    plan: ShadowPlan

    @property
    def service(self) -> ServiceDefinition:
        return self.input.service

    @property
    def request(self) -> Mapping[str, Any]:
        return self.input.request


@dataclass(frozen=True, slots=True)
class _Recorded:
    call: _Prepared
    recorded: RecordedHookCall
    decisions: list[Decision]
    cards: int


class UnknownComponentError(LookupError):
    """A service names a scorer or policy that is not loaded: a configuration error, found at start-up."""


@runtime_checkable
class PolicyUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that also holds the policy state, so a stateful policy reads the past, decides and appends
    its events in the transaction that records the call (store.policy_state.SqlPolicyUnitOfWork)."""

    def policy_state(self, *, patient_keys: Collection[str] = ()) -> PolicyState: ...

    def record_evaluations(self, hook_instance: str, evaluations: Sequence[Evaluation]) -> None: ...

    def explain_decision(self, decision_id: int) -> dict[str, Any] | None: ...


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
        shadow: LiveShadow | NoShadow | None = None,
    ) -> None:
        self._scorers = scorers
        self._policies = policies
        self._unit_of_work = unit_of_work
        self._salt = salt
        self._validation = validation
        self._clock = clock
        # Live candidates (shadow/live.py): which configuration serves a call (canary), and shadow work after it.
        self._shadow = shadow or NoShadow()

    def unit_of_work(self) -> UnitOfWork:
        return self._unit_of_work()

    def explain(self, decision_id: int) -> dict[str, Any] | None:
        """The stored decision with its trace, policy version and risk output; None when there is no such decision
        (or the store keeps no policy state)."""
        with self._unit_of_work() as uow:
            return uow.explain_decision(decision_id) if isinstance(uow, PolicyUnitOfWork) else None

    def check(self, service: ServiceDefinition) -> None:
        missing = [s for s in service.scorers if s not in self._scorers]
        if missing:
            raise UnknownComponentError(f"service {service.id!r} names unknown scorers {missing}")
        if service.policy not in self._policies:
            raise UnknownComponentError(f"service {service.id!r} names unknown policy {service.policy!r}")

    def handle(
        self, service: ServiceDefinition, request: Mapping[str, Any], actor: str = "anonymous"
    ) -> dict[str, Any]:
        """One hook call, recorded in a transaction of its own; its response, or the exception that failed it."""
        outcome = self.handle_batch([HookCallInput(service, request, actor)])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def handle_batch(self, calls: Iterable[HookCallInput]) -> list[dict[str, Any] | Exception]:
        """Several hook calls, recorded in one transaction: for each, in order, its response or the exception that
        failed it. `calls` is consumed one call at a time, each worked out before the next is taken.

        A hook call's own work (normalisation, scoring, the policy's decisions) is the same as when it comes alone,
        and the calls are recorded in order, so each reads the policy state the calls before it left, as it would
        had each committed alone. One commit for the lot is what batching buys: on SQLite a commit rewrites every
        page the transaction touched (the tables' and indexes' last pages, the same for every call), on PostgreSQL
        it is a round trip and a WAL flush. If recording any of them fails, the transaction is rolled back and each
        call is recorded again in a transaction of its own, so one call's failure is only that call's.
        """
        outcomes: list[dict[str, Any] | Exception] = []
        prepared: list[_Prepared] = []
        # The shadow candidates of each service called, read once for the batch: its calls arrived together.
        candidates: dict[str, list[CandidateRecord]] = {}
        for index, call in enumerate(calls):
            try:
                prepared.append(call.run(self._prepare, index, call, candidates))
                outcomes.append(NO_ANSWER)
            except Exception as exc:  # this call failed before anything was recorded; the others go on
                outcomes.append(exc)
        if not prepared:
            return outcomes
        try:
            with self._unit_of_work() as uow:
                _prepare_batch(uow, prepared)
                recorded = [call.input.run(self._record, uow, call) for call in prepared]
                uow.commit()
        except Exception as exc:
            if len(prepared) == 1:
                outcomes[prepared[0].index] = exc
                return outcomes
            log.warning("hook.batch_recorded_one_by_one", calls=len(prepared), error=type(exc).__name__)
            recorded = []
            for call in prepared:
                try:
                    with self._unit_of_work() as uow:
                        recorded.append(call.input.run(self._record, uow, call))
                        uow.commit()
                except Exception as failure:
                    outcomes[call.index] = failure
        for result in recorded:
            try:
                outcomes[result.call.index] = result.call.input.run(self._finish, result)
            except Exception as exc:  # recorded, so nothing is lost; this call alone is answered as failed
                outcomes[result.call.index] = exc
        return outcomes

    def _prepare(self, index: int, call: HookCallInput, candidates: dict[str, list[CandidateRecord]]) -> _Prepared:
        """Everything a call works out before it touches the store: canonical context, risk outputs, the policy."""
        service, request = call.service, call.request
        started = time.perf_counter()
        now = self._clock()
        context = normalise_prefetch(
            request.get("prefetch") or {}, validation=self._validation, now=now, salt=self._salt
        )
        outputs = self._score(service, context, now)
        policy = self._policies[service.policy]
        plan = self._shadow.plan(service.id, service.hook, service.scorers, context, outputs, now, candidates)
        if plan.serving is not None:
            policy, outputs = plan.serving.policy, plan.serving.outputs
        return _Prepared(index, call, started, now, context, outputs, policy, plan)

    def _record(self, uow: UnitOfWork, call: _Prepared) -> _Recorded:
        """Decide and record one call in `uow`'s transaction (not committed here).

        A repeated hookInstance is the EHR retrying: the store keeps the first call's record and hands back its
        response, so the retry gets the same cards and no second record. Retries are rare, so there is no read
        before the work: that would cost every call a transaction."""
        service, context, outputs, policy, now = call.service, call.context, call.outputs, call.policy, call.now
        patient_key = context.patient.key if context.patient else None
        evaluations: list[Evaluation] = []
        keeps_state, notes_patient, _ = _capabilities(uow)
        stateful = cast(PolicyUnitOfWork, uow) if keeps_state else None
        if notes_patient:
            # Always set, None included: in a batch the unit of work still holds the previous call's patient.
            cast(NotesFhirPatient, uow).note_fhir_patient(_patient_id(call.request))
        if isinstance(policy, RoutedPolicy):
            if stateful is None:
                raise UnknownComponentError(f"policy {policy.policy_id!r} needs a store that keeps policy state")
            # Read, decide and record in one transaction: the next call for this patient sees these events.
            state = stateful.policy_state(patient_keys=[patient_key] if patient_key else [])
            policy_context = PolicyContext.from_clinical(context, hook=service.hook, role=_role(call.request))
            evaluations = policy.evaluate_all(outputs, policy_context, state, now)
            decisions = [e.decision for e in evaluations]
        else:
            decisions = [policy.decide(output, context, now) for output in outputs]
        traces = [e.trace.to_dict() for e in evaluations] if evaluations else [None] * len(decisions)
        results = [
            ScoredDecision(
                output=output,
                decision=decision,
                card=render_card(decision, service=service, scorer_id=output.scorer_id),
                trace=trace,
            )
            for output, decision, trace in zip(outputs, decisions, traces, strict=True)
        ]
        response = {"cards": [r.card for r in results if r.card is not None]}
        hook_instance = str(call.request["hookInstance"])
        recorded = uow.repo.record_hook_call(
            HookCall(
                hook_instance=hook_instance,
                service_id=service.id,
                hook=service.hook,
                actor=call.input.actor,
                received_at=now,
                response=response,
                results=tuple(results),
                patient_key=patient_key,
                encounter_id=context.encounter.encounter_id if context.encounter else None,
            )
        )
        # A retried hookInstance recorded nothing, so its (re-)evaluation leaves no events either.
        if recorded.created and stateful is not None and evaluations:
            stateful.record_evaluations(hook_instance, evaluations)
        return _Recorded(call, recorded, decisions, len(response["cards"]))

    def _finish(self, result: _Recorded) -> dict[str, Any]:
        """After the commit: the call's shadow work, metrics and log line; its answer."""
        call, recorded = result.call, result.recorded
        if recorded.created:
            self._shadow.submit(
                call.plan, str(call.request["hookInstance"]), result.decisions, role=_role(call.request)
            )
            for decision in result.decisions:
                reason = decision.reasons[0].value if decision.reasons else "none"
                DECISIONS.labels(call.service.id, decision.action.value, reason).inc()
        log.info(
            "hook.handled",
            service=call.service.id,
            patient=call.context.patient.key if call.context.patient else None,
            outputs=len(call.outputs),
            cards=result.cards,
            issues=len(call.context.issues),
            replayed=not recorded.created,
            ms=round((time.perf_counter() - call.started) * 1000, 3),
        )
        return recorded.response

    def _score(self, service: ServiceDefinition, context: ClinicalContext, now: datetime) -> tuple[RiskOutput, ...]:
        outputs: list[RiskOutput] = []
        for scorer_id in service.scorers:
            try:
                outputs.extend(self._scorers[scorer_id].score(context, now))
            except Exception:
                SCORER_ERRORS.labels(scorer_id).inc()
                raise
        return tuple(outputs)


@runtime_checkable
class NotesFhirPatient(Protocol):
    """A unit of work that passes the EHR's Patient id on to the timers the call arms (escalations that post a FHIR
    Communication must name the patient as the EHR knows them)."""

    def note_fhir_patient(self, patient_id: str | None) -> None: ...


@runtime_checkable
class PreparesBatch(Protocol):
    """A unit of work that can do together, before a batch's calls are recorded one by one, what each call would
    otherwise do alone: on PostgreSQL, lock and read ahead the patients their policies will read
    (store.policy_state.prepare_patients) and look up their hookInstances (store.repository.expect_hook_calls)."""

    def prepare_batch(self, *, patient_keys: Collection[str], hook_instances: Collection[str]) -> None: ...


_CAPABILITIES: dict[type, tuple[bool, bool, bool]] = {}


def _capabilities(uow: UnitOfWork) -> tuple[bool, bool, bool]:
    """Whether a unit of work keeps policy state, notes the FHIR patient and prepares batches: known from its
    class, so found out once per class (an isinstance test against a runtime protocol inspects every member each
    time)."""
    found = _CAPABILITIES.get(type(uow))
    if found is None:
        found = _CAPABILITIES[type(uow)] = (
            isinstance(uow, PolicyUnitOfWork),
            isinstance(uow, NotesFhirPatient),
            isinstance(uow, PreparesBatch),
        )
    return found


def _prepare_batch(uow: UnitOfWork, calls: Sequence[_Prepared]) -> None:
    """Before a batch's calls are recorded one by one: the patients whose state their policies will read, and the
    hookInstances they will record."""
    if not _capabilities(uow)[2]:
        return
    cast(PreparesBatch, uow).prepare_batch(
        patient_keys=[
            call.context.patient.key
            for call in calls
            if call.context.patient is not None and isinstance(call.policy, RoutedPolicy)
        ],
        hook_instances=[str(call.request["hookInstance"]) for call in calls],
    )


def _patient_id(request: Mapping[str, Any]) -> str | None:
    context = request.get("context")
    patient = context.get("patientId") if isinstance(context, Mapping) else None
    return patient if isinstance(patient, str) and patient else None


def _role(request: Mapping[str, Any]) -> str:
    """The user's role as a policy route may test it: the FHIR resource type of `context.userId` (Practitioner,
    PractitionerRole, ...), lower-cased; the EHR says nothing finer in a standard hook call."""
    context = request.get("context")
    user = context.get("userId") if isinstance(context, Mapping) else None
    if isinstance(user, str) and "/" in user:
        return user.split("/", 1)[0].lower()
    return "unknown"
