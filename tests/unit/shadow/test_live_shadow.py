"""Shadow candidates beside live calls, with fakes: recorded never served, failures counted, canary calls served."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from clinical.model import ClinicalContext, Patient, Provenance, Sex
from policy.port import Action, Decision, Policy
from scoring.model.registry import ModelRegistry
from scoring.port import RiskOutput
from shadow.arms import ArmFactory
from shadow.canary import bucket
from shadow.live import SHADOW_OUTCOMES, LiveShadow
from shadow.recorded import ShadowDecision
from shadow.stages import BucketBy, CandidateKind, CandidateRecord, Stage
from tests.fakes import ScriptedPolicy

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PATIENT_KEY = "pseudonym-4d1c"


class RaisingPolicy:
    """A candidate policy with a bug: it raises on every output, with PHI in its message."""

    policy_id = "raising"
    version = "1"

    def decide(self, output: RiskOutput, context: ClinicalContext, now: datetime) -> Decision:
        raise RuntimeError(f"cannot decide for {PATIENT_KEY} born 1950-01-01")


@dataclass
class SlowPolicy(ScriptedPolicy):
    delay_s: float = 0.05

    def decide(self, output: RiskOutput, context: ClinicalContext, now: datetime) -> Decision:
        time.sleep(self.delay_s)
        return super().decide(output, context, now)


@dataclass
class FakeCandidates:
    """The candidate store's two live-path roles: the source of candidates and the sink of shadow decisions."""

    records: list[CandidateRecord] = field(default_factory=list)
    recorded: list[ShadowDecision] = field(default_factory=list)
    gate: threading.Event | None = None

    def evaluated(self, service_id: str) -> list[CandidateRecord]:
        return [r for r in self.records if r.service_id == service_id]

    def record_shadow(self, decisions: Sequence[ShadowDecision]) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        self.recorded.extend(decisions)


def _candidate(candidate_id: int, spec: str, stage: Stage = Stage.SHADOW, fraction: float = 0.5) -> CandidateRecord:
    return CandidateRecord(
        id=candidate_id,
        service_id="svc",
        kind=CandidateKind.POLICY,
        spec=spec,
        model_version=None,
        stage=stage,
        fraction=fraction,
        bucket_by=BucketBy.PATIENT,
        salt=f"salt-{candidate_id}",
        created_by="staff:x",
        created_at=NOW,
        changed_at=NOW,
    )


def _context(key: str = PATIENT_KEY) -> ClinicalContext:
    return ClinicalContext(patient=Patient(key, "1950-01-01", Sex.FEMALE, (), Provenance("Patient", "p1")))


OUTPUTS = (
    RiskOutput(scorer_id="fake", scorer_version="1", score=7.0, band="high", as_of=NOW, input_hash="0" * 64),
    RiskOutput(scorer_id="fake", scorer_version="1", score=1.0, band="low", as_of=NOW, input_hash="1" * 64),
)
LIVE = ScriptedPolicy("live", action=Action.SUPPRESS)
POLICIES: dict[str, Policy] = {
    "live": LIVE,
    "shouting": ScriptedPolicy("shouting", action=Action.SURFACE),
    "raising": RaisingPolicy(),
    "slow": SlowPolicy("slow"),
}


def _shadow(tmp_path: Path, fake: FakeCandidates, **options: object) -> LiveShadow:
    arms = ArmFactory(POLICIES, registry=ModelRegistry(tmp_path))
    options.setdefault("background", False)
    return LiveShadow(fake, fake, arms, **options)  # type: ignore[arg-type]


def _live_call(shadow: LiveShadow, context: ClinicalContext, hook_instance: str = "h1") -> list[Decision]:
    """What the pipeline does: plan, decide with whichever policy serves, then hand the call over."""
    plan = shadow.plan("svc", "patient-view", ["fake"], context, OUTPUTS, NOW)
    policy, outputs = (plan.serving.policy, plan.serving.outputs) if plan.serving else (LIVE, OUTPUTS)
    decisions = [policy.decide(o, context, NOW) for o in outputs]
    shadow.submit(plan, hook_instance, decisions, role="practitioner")
    return decisions


def _outcome(candidate_id: int, outcome: str) -> float:
    return float(SHADOW_OUTCOMES.labels(str(candidate_id), outcome)._value.get())


def test_a_shadow_candidate_records_its_would_be_decisions_beside_the_live_ones(tmp_path: Path) -> None:
    fake = FakeCandidates([_candidate(1, "shouting")])
    served = _live_call(_shadow(tmp_path, fake), _context())
    assert [d.action for d in served] == [Action.SUPPRESS, Action.SUPPRESS]  # the live policy served
    assert [(d.action, d.live_action, d.band, d.served) for d in fake.recorded] == [
        (Action.SURFACE, Action.SUPPRESS, "high", False),
        (Action.SURFACE, Action.SUPPRESS, "low", False),
    ]
    assert {d.hook_instance for d in fake.recorded} == {"h1"}


def test_a_failing_candidate_is_counted_and_logged_without_phi_and_the_others_still_record(tmp_path: Path) -> None:
    fake = FakeCandidates([_candidate(11, "raising"), _candidate(12, "shouting")])
    failed_before = _outcome(11, "failed")
    with capture_logs() as logs:
        served = _live_call(_shadow(tmp_path, fake), _context())
    assert [d.action for d in served] == [Action.SUPPRESS, Action.SUPPRESS]
    assert _outcome(11, "failed") == failed_before + 1
    assert {d.candidate_id for d in fake.recorded} == {12}
    failures = [entry for entry in logs if entry["event"] == "shadow.candidate_failed"]
    assert failures == [
        {"event": "shadow.candidate_failed", "candidate": 11, "error": "RuntimeError", "log_level": "warning"}
    ]
    assert PATIENT_KEY not in repr(logs) and "1950" not in repr(logs)


def test_a_canary_serves_the_patients_in_its_bucket_and_shadows_the_rest(tmp_path: Path) -> None:
    canary = _candidate(21, "shouting", stage=Stage.CANARY, fraction=0.5)
    fake = FakeCandidates([canary])
    shadow = _shadow(tmp_path, fake)
    keys = [f"patient-{i}" for i in range(40)]
    for i, key in enumerate(keys):
        served = _live_call(shadow, _context(key), hook_instance=f"h{i}")
        inside = bucket(canary.salt, key) < 0.5
        assert [d.action for d in served] == [Action.SURFACE if inside else Action.SUPPRESS] * 2
    rows = {d.hook_instance: d for d in fake.recorded}
    assert {d.served for d in rows.values()} == {True, False}
    for i, key in enumerate(keys):
        assert rows[f"h{i}"].bucket == bucket(canary.salt, key)
        assert rows[f"h{i}"].served == (bucket(canary.salt, key) < 0.5)


def test_a_candidate_that_cannot_be_built_leaves_the_live_configuration_serving(tmp_path: Path) -> None:
    broken = _candidate(31, "no-such-policy", stage=Stage.LIVE, fraction=1.0)
    fake = FakeCandidates([broken])
    failed_before = _outcome(31, "failed")
    served = _live_call(_shadow(tmp_path, fake), _context())
    assert [d.action for d in served] == [Action.SUPPRESS, Action.SUPPRESS]
    assert _outcome(31, "failed") == failed_before + 1
    assert fake.recorded == []


def test_candidates_past_the_call_budget_are_skipped_and_counted(tmp_path: Path) -> None:
    fake = FakeCandidates([_candidate(41, "slow"), _candidate(42, "shouting")])
    skipped_before = _outcome(42, "over-budget")
    _live_call(_shadow(tmp_path, fake, budget_seconds=0.01), _context())
    assert {d.candidate_id for d in fake.recorded} == {41}
    assert _outcome(42, "over-budget") == skipped_before + 1


def test_background_work_is_recorded_off_the_call_and_dropped_when_the_queue_is_full(tmp_path: Path) -> None:
    gate = threading.Event()
    fake = FakeCandidates([_candidate(51, "shouting")], gate=gate)
    shadow = _shadow(tmp_path, fake, background=True, queue_size=1)
    dropped_before = _outcome(51, "dropped")
    _live_call(shadow, _context(), "h1")  # taken by the thread, which then waits at the gate
    deadline = time.monotonic() + 5
    while shadow._queue.qsize() and time.monotonic() < deadline:
        time.sleep(0.01)
    _live_call(shadow, _context(), "h2")  # fills the one queue slot
    _live_call(shadow, _context(), "h3")  # no room: dropped
    assert fake.recorded == []  # nothing was written on the calls themselves
    gate.set()
    assert shadow.drain(timeout=10)
    assert sorted({d.hook_instance for d in fake.recorded}) == ["h1", "h2"]
    assert _outcome(51, "dropped") == dropped_before + 1


@pytest.mark.parametrize("stage", [Stage.CANARY, Stage.LIVE])
def test_a_serving_candidate_records_the_decisions_the_call_served(tmp_path: Path, stage: Stage) -> None:
    fake = FakeCandidates([_candidate(61, "shouting", stage=stage, fraction=1.0)])
    served = _live_call(_shadow(tmp_path, fake), _context())
    assert [d.action for d in served] == [Action.SURFACE, Action.SURFACE]
    assert [(d.served, d.action, d.live_action) for d in fake.recorded] == [(True, Action.SURFACE, Action.SURFACE)] * 2
    assert fake.recorded[0].stage is stage


def test_a_canary_whose_policy_raises_never_serves_and_the_live_policy_answers(tmp_path: Path) -> None:
    fake = FakeCandidates([_candidate(71, "raising", stage=Stage.LIVE, fraction=1.0)])
    failed_before = _outcome(71, "failed")
    served = _live_call(_shadow(tmp_path, fake), _context())
    assert [d.action for d in served] == [Action.SUPPRESS, Action.SUPPRESS]
    assert _outcome(71, "failed") == failed_before + 1
