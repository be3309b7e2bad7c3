"""Candidates beside the live hook path: which configuration serves a call (canary), and shadow evaluation after it.

`LiveShadow.plan` runs on the critical path: one read of the service's candidates and, for a canary call, the
candidate's outputs. `LiveShadow.submit` hands the rest to one bounded background thread after the live transaction
has committed: a slow, failing or backed-up candidate costs the live answer nothing, and is counted, never raised.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter

from cdsctl.logs import get_logger
from clinical.model import ClinicalContext
from policy.context import PolicyContext
from policy.engine import RoutedPolicy
from policy.port import Decision, Policy
from policy.state import InMemoryPolicyState
from scoring.port import RiskOutput
from shadow.arms import Arm, ArmFactory
from shadow.canary import Assignment, assign
from shadow.recorded import CandidateSource, ShadowDecision, ShadowSink, decision_rows
from shadow.stages import CandidateRecord

log = get_logger(__name__)

SHADOW_OUTCOMES = Counter(
    "cds_shadow_candidate_calls_total",
    "Live calls a candidate was evaluated on, by candidate id and outcome (ok, failed, over-budget, dropped).",
    ["candidate", "outcome"],
)


# Calls written to the database in one transaction by the shadow thread, at most.
_BATCH = 64


@dataclass(frozen=True, slots=True)
class Serving:
    """The candidate that serves this call instead of the live configuration, with its policy and outputs."""

    candidate: CandidateRecord
    assignment: Assignment
    policy: Policy
    outputs: tuple[RiskOutput, ...]


@dataclass(frozen=True, slots=True)
class ShadowPlan:
    """A hook call's candidates: read once on the critical path, evaluated after it."""

    service_id: str
    hook: str
    context: ClinicalContext
    outputs: tuple[RiskOutput, ...]  # the live scorers' outputs, before any candidate changed them
    now: datetime
    candidates: tuple[tuple[CandidateRecord, Arm, Assignment], ...] = ()
    serving: Serving | None = None


@dataclass
class _Job:
    plan: ShadowPlan
    hook_instance: str
    served: tuple[Decision, ...]
    role: str
    queued: float = field(default_factory=time.perf_counter)


class LiveShadow:
    """Plans candidates for live calls and evaluates shadow candidates on one bounded background thread."""

    def __init__(
        self,
        source: CandidateSource,
        sink: ShadowSink,
        arms: ArmFactory,
        *,
        budget_seconds: float = 0.5,
        queue_size: int = 1000,
        max_patients: int = 10_000,
        background: bool = True,
    ) -> None:
        self._source = source
        self._sink = sink
        self._arms = arms
        self._budget = budget_seconds
        self._background = background
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Each shadow candidate's own policy state per patient (its own de-duplication, lockouts, delays): in
        # memory, per process and bounded, because shadow decisions are never shown and must never touch the live
        # state the live policy reads.
        self._states: OrderedDict[tuple[int, str], InMemoryPolicyState] = OrderedDict()
        self._max_patients = max_patients

    def plan(
        self, service_id: str, hook: str, scorers: Collection[str], context: ClinicalContext,
        outputs: Sequence[RiskOutput], now: datetime, read: dict[str, list[CandidateRecord]] | None = None,
    ) -> ShadowPlan:  # fmt: skip
        """The call's candidates, and the one serving it if the call falls in a canary. Never raises: a candidate
        that cannot be planned is counted and left out, and the live configuration serves.

        `read` holds the candidates already read for calls that arrived with this one (HookPipeline.handle_batch),
        by service: the store is read once for them all."""
        base = ShadowPlan(service_id, hook, context, tuple(outputs), now)
        records = read.get(service_id) if read is not None else None
        if records is None:
            try:
                records = self._source.evaluated(service_id)
            except Exception as exc:  # the live call must go on without its candidates
                log.warning("shadow.candidates_unreadable", service=service_id, error=type(exc).__name__)
                return base
            if read is not None:
                read[service_id] = records
        if not records:
            return base
        patient = context.patient.key if context.patient else None
        unit = context.encounter.unit if context.encounter else None
        planned: list[tuple[CandidateRecord, Arm, Assignment]] = []
        serving: Serving | None = None
        for record in records:
            try:
                arm = self._arms.arm(record, scorers)
                assignment = assign(record, patient_key=patient, unit_id=unit)
                if assignment.served and serving is None:
                    served_outputs = arm.outputs(outputs, context, now)
                    _rehearse(arm.policy, served_outputs, context, hook, now)
                    serving = Serving(record, assignment, arm.policy, served_outputs)
            except Exception as exc:  # a broken candidate never breaks the live path
                _failed(record.id, exc)
                continue
            planned.append((record, arm, assignment))
        return ShadowPlan(service_id, hook, context, tuple(outputs), now, tuple(planned), serving)

    def submit(self, plan: ShadowPlan, hook_instance: str, served: Sequence[Decision], *, role: str) -> None:
        """Queue the shadow work of a recorded call; when the queue is full the work is dropped and counted."""
        if not plan.candidates:
            return
        job = _Job(plan, hook_instance, tuple(served), role)
        if not self._background:
            self._run(job)
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            for record, _, _ in plan.candidates:
                SHADOW_OUTCOMES.labels(str(record.id), "dropped").inc()
            log.warning("shadow.queue_full", service=plan.service_id, candidates=len(plan.candidates))

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued call is recorded (tests, shutdown); False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _ensure_thread(self) -> None:
        # Started on first use rather than at wiring time, so it is born in the serving process, after any fork.
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="shadow-candidates", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            jobs = [self._queue.get()]
            # Whatever else is waiting goes into the same write: one short transaction for many calls keeps the
            # shadow thread off the database writer lock the live calls need.
            while len(jobs) < _BATCH:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                rows = [row for job in jobs for row in self._evaluate(job)]
                self._sink.record_shadow(rows)
            except Exception as exc:  # the thread must outlive any one batch's failure
                log.warning("shadow.record_failed", calls=len(jobs), error=type(exc).__name__)
            finally:
                for _ in jobs:
                    self._queue.task_done()

    def _run(self, job: _Job) -> None:
        self._sink.record_shadow(self._evaluate(job))

    def _evaluate(self, job: _Job) -> list[ShadowDecision]:
        plan = job.plan
        started = time.perf_counter()
        rows: list[ShadowDecision] = []
        for record, arm, assignment in plan.candidates:
            if time.perf_counter() - started > self._budget:
                SHADOW_OUTCOMES.labels(str(record.id), "over-budget").inc()
                continue
            serves = plan.serving is not None and plan.serving.candidate.id == record.id
            try:
                if serves:
                    outputs, decisions = plan.serving.outputs, job.served  # type: ignore[union-attr]
                else:
                    outputs = arm.outputs(plan.outputs, plan.context, plan.now)
                    decisions = self._decide(record, arm, outputs, plan, job.role)
            except Exception as exc:  # counted and logged by type only: messages may hold PHI
                _failed(record.id, exc)
                continue
            rows.extend(
                decision_rows(
                    record,
                    assignment,
                    serves,
                    outputs,
                    decisions,
                    served=job.served,
                    hook_instance=job.hook_instance,
                    service_id=plan.service_id,
                )
            )
            SHADOW_OUTCOMES.labels(str(record.id), "ok").inc()
        return rows

    def _decide(
        self, record: CandidateRecord, arm: Arm, outputs: Sequence[RiskOutput], plan: ShadowPlan, role: str
    ) -> tuple[Decision, ...]:
        if not isinstance(arm.policy, RoutedPolicy):
            return tuple(arm.policy.decide(o, plan.context, plan.now) for o in outputs)
        policy_context = PolicyContext.from_clinical(plan.context, hook=plan.hook, role=role)
        state = self._state(record.id, policy_context.patient.key)
        evaluations = arm.policy.evaluate_all(outputs, policy_context, state, plan.now)
        for evaluation in evaluations:
            state.apply(evaluation.events)
        return tuple(e.decision for e in evaluations)

    def _state(self, candidate_id: int, patient: str | None) -> InMemoryPolicyState:
        if patient is None:
            return InMemoryPolicyState()
        key = (candidate_id, patient)
        state = self._states.pop(key, None) or InMemoryPolicyState()
        self._states[key] = state
        while len(self._states) > self._max_patients:
            self._states.popitem(last=False)
        return state


def _rehearse(
    policy: Policy, outputs: Sequence[RiskOutput], context: ClinicalContext, hook: str, now: datetime
) -> None:
    """Decide once on an empty state before a candidate serves: a candidate whose policy raises is caught here,
    off the live transaction, and the live configuration serves instead. (A failure that only the live state
    provokes still ends in the deadline's empty answer, as any live failure does.)"""
    if isinstance(policy, RoutedPolicy):
        policy.evaluate_all(outputs, PolicyContext.from_clinical(context, hook=hook), InMemoryPolicyState(), now)
    else:
        for output in outputs:
            policy.decide(output, context, now)


def _failed(candidate_id: int, exc: Exception) -> None:
    SHADOW_OUTCOMES.labels(str(candidate_id), "failed").inc()
    log.warning("shadow.candidate_failed", candidate=candidate_id, error=type(exc).__name__)


class NoShadow:
    """The pipeline's default when no candidates are wired: the live configuration serves and nothing is queued."""

    def plan(
        self, service_id: str, hook: str, scorers: Collection[str], context: ClinicalContext,
        outputs: Sequence[RiskOutput], now: datetime, read: dict[str, list[CandidateRecord]] | None = None,
    ) -> ShadowPlan:  # fmt: skip
        return ShadowPlan(service_id, hook, context, tuple(outputs), now)

    def submit(self, plan: ShadowPlan, hook_instance: str, served: Sequence[Decision], *, role: str) -> None:
        return None
