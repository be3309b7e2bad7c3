"""Policy case files: (risk output, context, time, prior events) → expected decision, run on a simulated clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from policy.context import PatientFacts, PolicyContext, UnitFacts
from policy.document import PolicyValidationError, error_path
from policy.engine import Evaluation, RoutedPolicy
from policy.events import (
    AlertAcknowledged,
    AlertDismissed,
    AlertSnoozed,
    EscalationStarted,
    EscalationStepReached,
    PolicyEvent,
    SilenceExpired,
)
from policy.port import Action, Indicator, Reason
from policy.silences import create_silence
from policy.stages import BAND_INDICATOR
from policy.state import InMemoryPolicyState
from scoring.port import RiskOutput

CASE_PATIENT = "case-patient"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseOutput(_Strict):
    scorer: str
    band: str
    score: float | None = 1.0
    partial: bool = False
    missing: list[str] = []


class CaseContext(_Strict):
    hook: str = "patient-view"
    role: str = "nurse"
    unit: str | None = "unit-1"
    unit_type: str = "ward"
    census: int | None = None
    staffing_ratio: float | None = None
    patient: str | None = CASE_PATIENT
    encounter: str | None = None
    age: float | None = None
    comfort_care: bool = False
    code_status: str | None = None
    on_antibiotics: bool = False
    observed: dict[str, AwareDatetime] = {}
    windows: list[str] = []

    def to_policy(self) -> PolicyContext:
        return PolicyContext(
            hook=self.hook,
            role=self.role,
            unit=UnitFacts(self.unit, self.unit_type, self.census, self.staffing_ratio),
            patient=PatientFacts(
                key=self.patient,
                encounter_id=self.encounter,
                age_years=self.age,
                comfort_care=self.comfort_care,
                code_status=self.code_status,
                on_antibiotics=self.on_antibiotics,
                observed=dict(self.observed),
            ),
            open_windows=frozenset(self.windows),
        )


class PriorEvent(_Strict):
    """Something that happened before the case's `now`: an output the policy decided, or a clinician's action."""

    at: AwareDatetime
    event: Literal["evaluated", "dismissed", "snoozed", "acknowledged", "silenced", "silence-expired"]
    scorer: str | None = None
    band: str | None = None
    score: float | None = 1.0
    indicator: Indicator | None = None
    context: CaseContext | None = None
    until: AwareDatetime | None = None
    match: dict[str, Any] = {}
    # `evaluated` only: the same output for this many different patients on the same unit (to fill a budget).
    repeat: int = Field(default=1, ge=1)
    silence_id: str = "s1"
    author: str = "case author"
    comment: str = "case comment"


class Expect(_Strict):
    action: Action
    reasons: list[Reason] = []
    indicator: Indicator | None = None
    route: str | None = None
    delay_until: AwareDatetime | None = None
    # Roles notified by this decision (the first rung of a new ladder, or rungs that came due).
    notify: list[str] | None = None


class Case(_Strict):
    name: str
    now: AwareDatetime
    prior: list[PriorEvent] = []
    output: CaseOutput
    siblings: list[CaseOutput] = []
    context: CaseContext = CaseContext()
    expect: Expect


class CaseFile(_Strict):
    policy: str | None = None
    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    passed: bool
    expected: str
    actual: str
    problems: tuple[str, ...]


def load_cases(path: Path) -> CaseFile:
    try:
        return CaseFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise PolicyValidationError([f"{error_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]) from None
    except yaml.YAMLError as exc:
        raise PolicyValidationError([f"(cases): not valid YAML: {exc}"]) from None


def _risk(output: CaseOutput, at: datetime) -> RiskOutput:
    return RiskOutput(
        scorer_id=output.scorer,
        scorer_version="case",
        score=output.score,
        band=output.band,
        as_of=at,
        input_hash=f"case:{output.scorer}:{output.band}:{output.score}",
        partial=output.partial,
        missing=tuple(output.missing),
    )


def _prior_events(prior: PriorEvent, context: CaseContext, policy: RoutedPolicy, state: InMemoryPolicyState) -> None:
    patient = context.patient or CASE_PATIENT
    scorer = prior.scorer or ""
    events: list[PolicyEvent] = []
    if prior.event == "evaluated":
        output = _risk(CaseOutput(scorer=scorer, band=prior.band or "", score=prior.score), prior.at)
        base = prior.context or context
        for i in range(prior.repeat):
            who = base if prior.repeat == 1 else base.model_copy(update={"patient": f"{patient}#{i}"})
            state.apply(policy.evaluate(output, who.to_policy(), state, prior.at).events)
    elif prior.event == "dismissed":
        indicator = prior.indicator or BAND_INDICATOR.get(prior.band or "", Indicator.INFO)
        events.append(AlertDismissed(patient, scorer, prior.band or "", indicator, prior.at))
    elif prior.event == "snoozed":
        if prior.until is None:
            raise PolicyValidationError(["prior snoozed: `until` is required"])
        events.append(AlertSnoozed(patient, scorer, prior.until, prior.at))
    elif prior.event == "acknowledged":
        events.append(AlertAcknowledged(patient, scorer, prior.at))
    elif prior.event == "silenced":
        if prior.until is None:
            raise PolicyValidationError(["prior silenced: `until` is required"])
        events.append(
            create_silence(
                silence_id=prior.silence_id,
                match=prior.match,
                starts_at=prior.at,
                ends_at=prior.until,
                author=prior.author,
                comment=prior.comment,
                now=prior.at,
            )
        )
    else:
        events.append(SilenceExpired(prior.silence_id, prior.at))
    state.apply(events)


def notified(evaluation: Evaluation) -> list[str]:
    roles: list[str] = []
    for event in evaluation.events:
        if isinstance(event, EscalationStarted) and event.steps:
            roles.append(event.steps[0].role)
        elif isinstance(event, EscalationStepReached):
            roles.append(event.step.role)
    return roles


def run_case(policy: RoutedPolicy, case: Case) -> CaseResult:
    """Replay the prior events in time order on a fresh state, then decide the case's output at `now`."""
    state = InMemoryPolicyState()
    for prior in sorted(case.prior, key=lambda p: p.at):
        _prior_events(prior, case.context, policy, state)
    output = _risk(case.output, case.now)
    siblings = [output, *(_risk(s, case.now) for s in case.siblings)]
    evaluation = policy.evaluate(output, case.context.to_policy(), state, case.now, siblings=siblings)
    decision, expect = evaluation.decision, case.expect
    problems: list[str] = []
    if decision.action is not expect.action:
        problems.append(f"action {decision.action.value} != {expect.action.value}")
    missing = [r.value for r in expect.reasons if r not in decision.reasons]
    if missing:
        problems.append(f"reasons lack {missing}")
    indicator = decision.card.indicator if decision.card else None
    if expect.indicator is not None and indicator is not expect.indicator:
        problems.append(f"indicator {indicator} != {expect.indicator.value}")
    if expect.route is not None and decision.route != expect.route:
        problems.append(f"route {decision.route} != {expect.route}")
    if expect.delay_until is not None and decision.delay_until != expect.delay_until:
        problems.append(f"delay_until {decision.delay_until} != {expect.delay_until}")
    roles = notified(evaluation)
    if expect.notify is not None and roles != expect.notify:
        problems.append(f"notified {roles} != {expect.notify}")
    expected = " ".join(
        [expect.action.value, *(r.value for r in expect.reasons), *([expect.route] if expect.route else [])]
    )
    actual = " ".join([decision.action.value, *(r.value for r in decision.reasons), decision.route])
    return CaseResult(case.name, not problems, expected, actual, tuple(problems))


def run_cases(policy: RoutedPolicy, cases: CaseFile) -> list[CaseResult]:
    return [run_case(policy, case) for case in cases.cases]


def format_table(results: list[CaseResult]) -> str:
    """A plain-text table, one row per case, then the failures' details and a count."""
    rows = [("", "case", "expected", "actual")]
    rows += [("ok" if r.passed else "FAIL", r.name, r.expected, r.actual) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        if not r.passed:
            lines.append(f"FAIL {r.name}: " + "; ".join(r.problems))
    failed = sum(1 for r in results if not r.passed)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
