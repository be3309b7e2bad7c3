"""Builders for the policy tests: outputs, contexts, a fake clock and a ward that applies each decision's events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from policy.context import PatientFacts, PolicyContext, UnitFacts
from policy.document import load_policy
from policy.engine import Evaluation, RoutedPolicy
from policy.events import PolicyEvent
from policy.port import Decision
from policy.state import InMemoryPolicyState
from scoring.port import RiskOutput

# A Wednesday in January: London time is UTC, and no handover window is open at 10:00.
START = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)


def output(
    scorer: str = "news2", band: str = "medium", score: float | None = 5.0, *, missing: tuple[str, ...] = ()
) -> RiskOutput:
    return RiskOutput(
        scorer_id=scorer,
        scorer_version="1",
        score=score,
        band=band,
        as_of=START,
        input_hash=f"{scorer}-{band}-{score}".ljust(64, "0"),
        partial=bool(missing),
        missing=missing,
    )


def context(
    *,
    patient: str | None = "p1",
    unit_type: str = "ward",
    unit: str = "4N",
    hook: str = "patient-view",
    role: str = "nurse",
    windows: frozenset[str] = frozenset(),
    comfort_care: bool = False,
    on_antibiotics: bool = False,
    age_years: float | None = None,
    observed: dict[str, datetime] | None = None,
    census: int | None = None,
) -> PolicyContext:
    return PolicyContext(
        hook=hook,
        role=role,
        unit=UnitFacts(unit_id=unit, unit_type=unit_type, census=census),
        patient=PatientFacts(
            key=patient,
            age_years=age_years,
            comfort_care=comfort_care,
            on_antibiotics=on_antibiotics,
            observed=observed or {},
        ),
        open_windows=windows,
    )


def policy(text: str) -> RoutedPolicy:
    return RoutedPolicy(load_policy(text))


@dataclass
class FakeClock:
    now: datetime = START

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Ward:
    """Drives a policy the way the hook pipeline will: decide at the clock's time, then apply the events."""

    policy: RoutedPolicy
    clock: FakeClock = field(default_factory=FakeClock)
    state: InMemoryPolicyState = field(default_factory=InMemoryPolicyState)
    last: Evaluation | None = None

    def decide(self, out: RiskOutput, ctx: PolicyContext | None = None, **siblings: RiskOutput) -> Decision:
        evaluation = self.policy.evaluate(
            out, ctx or context(), self.state, self.clock.now, siblings=[out, *siblings.values()]
        )
        self.state.apply(evaluation.events)
        self.last = evaluation
        return evaluation.decision

    def record(self, *events: PolicyEvent) -> None:
        self.state.apply(events)
