"""The routed policy: one decision per risk output, from a policy document's routes and its muting mechanisms.

Stages, in order: no data → route → inhibition → silence → lockout → snooze → pending delay → dedup → route delay →
time windows → budget → card. Each stage may settle the decision; every stage that looked leaves a trace step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from clinical.model import ClinicalContext
from policy.context import PolicyContext
from policy.document import PolicyDocument, Trend
from policy.escalation import due_steps
from policy.events import OutputEvaluated, PolicyEvent
from policy.matching import Facts
from policy.mechanisms import DEFAULT_BAND_RANK, CompiledInhibition, compile_inhibitions
from policy.overlay import OverlayState
from policy.port import Action, CardContent, Decision, EscalationStep, Reason
from policy.routing import CompiledRoute, compile_routes, route
from policy.stages import Run, Settled, finish, run_stages
from policy.state import InMemoryPolicyState, PolicyState
from policy.trace import Mechanism, Step, Trace
from policy.windows import DEFAULT_SHIFTS, open_windows, shift_start
from scoring.port import RiskOutput

# When an action ranks higher it wins among the routes a `continue` lets match: a later route can add urgency,
# never take it away.
_ACTION_RANK = {Action.SUPPRESS: 0, Action.DELAY: 1, Action.SURFACE: 2, Action.ESCALATE: 3}
# "Dismissed recently", as routes may test it.
RECENT = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Evaluation:
    decision: Decision
    trace: Trace
    # What the decision implies for the state; the caller applies them (the engine never writes).
    events: tuple[PolicyEvent, ...]


class RoutedPolicy:
    """A policy document made executable. Build once per document version; `evaluate` is pure."""

    def __init__(self, document: PolicyDocument, *, state: PolicyState | None = None) -> None:
        self.document = document
        self.content_hash = document.content_hash()
        self._root = compile_routes(document)
        self._inhibitions = compile_inhibitions(document.inhibit_rules)
        self._ranks: dict[str, Mapping[str, int]] = {
            scorer: {band: i for i, band in enumerate(bands)} for scorer, bands in document.scorers.items()
        }
        self._zone = document.zone
        self._shifts = tuple(document.budget.shifts) if document.budget else DEFAULT_SHIFTS
        # `decide` (the Policy port) has no state argument; it reads this one, empty unless the wiring gives one.
        self._state: PolicyState = state if state is not None else InMemoryPolicyState()

    @property
    def policy_id(self) -> str:
        return self.document.id

    @property
    def version(self) -> str:
        # The declared version plus the content hash: two documents can never pass for the same version.
        return f"{self.document.version}+{self.content_hash[:12]}"

    @property
    def root(self) -> CompiledRoute:
        return self._root

    @property
    def inhibitions(self) -> tuple[CompiledInhibition, ...]:
        return self._inhibitions

    def decide(self, output: RiskOutput, context: ClinicalContext, now: datetime) -> Decision:
        return self.evaluate(output, PolicyContext.from_clinical(context), self._state, now).decision

    def evaluate_all(
        self, outputs: Sequence[RiskOutput], context: PolicyContext, state: PolicyState, now: datetime
    ) -> list[Evaluation]:
        """Decide a hook call's outputs together: each sees the others as inhibition sources, and the events of
        the ones before it (so two warnings in one call count twice against the budget)."""
        overlay = OverlayState(state)
        out = []
        for output in outputs:
            evaluation = self.evaluate(output, context, overlay, now, siblings=outputs)
            overlay.add(evaluation.events)
            out.append(evaluation)
        return out

    def evaluate(
        self,
        output: RiskOutput,
        context: PolicyContext,
        state: PolicyState,
        now: datetime,
        *,
        siblings: Sequence[RiskOutput] = (),
    ) -> Evaluation:
        patient = context.patient.key
        ranks = self._ranks.get(output.scorer_id, DEFAULT_BAND_RANK)
        seen: list[PolicyEvent] = []
        if patient is not None:
            seen.append(OutputEvaluated(patient, output.scorer_id, output.band, now))
        if output.score is None:
            decision = self._decision(output, now, Action.SUPPRESS, (Reason.NO_DATA,), "root")
            step = Step(Mechanism.NO_DATA, True, "the scorer had no inputs: never shown as low risk")
            return Evaluation(decision, Trace((), (), "root", (step,)), tuple(seen))
        window_ends = open_windows(self.document.time_windows, self._zone, now, context.open_windows)
        facts = self._facts(output, context, state, now, ranks, frozenset(window_ends))
        matched, attempts = route(self._root, facts)
        chosen = max(matched, key=lambda r: _ACTION_RANK[r.settings.action])
        also = [r.route_id for r in matched if r is not chosen]
        run = Run(
            policy=self,
            output=output,
            context=context,
            state=state,
            now=now,
            siblings=siblings,
            facts=facts,
            route=chosen,
            ranks=ranks,
            window_ends=window_ends,
        )
        detail = f"{chosen.route_id}: {chosen.settings.action.value}" + (f" (also matched {also})" if also else "")
        run.steps.append(Step(Mechanism.ROUTE, False, detail))
        settled: Settled = run_stages(run) or finish(run)
        decision = self._decision(
            output,
            now,
            settled.action,
            settled.reasons,
            chosen.route_id,
            card=settled.card,
            delay_until=settled.delay_until,
            escalation=chosen.settings.escalation if settled.action is Action.ESCALATE else (),
        )
        trace = Trace(tuple(attempts), tuple(r.route_id for r in matched), chosen.route_id, tuple(run.steps))
        return Evaluation(decision, trace, (*seen, *run.events))

    def _decision(
        self,
        output: RiskOutput,
        now: datetime,
        action: Action,
        reasons: tuple[Reason, ...],
        route_id: str,
        *,
        card: CardContent | None = None,
        delay_until: datetime | None = None,
        escalation: tuple[EscalationStep, ...] = (),
    ) -> Decision:
        return Decision(
            action=action,
            reasons=reasons,
            policy_id=self.policy_id,
            policy_version=self.version,
            route=route_id,
            inputs_hash=output.input_hash,
            decided_at=now,
            card=card,
            delay_until=delay_until,
            escalation=escalation,
        )

    def _facts(
        self,
        output: RiskOutput,
        context: PolicyContext,
        state: PolicyState,
        now: datetime,
        ranks: Mapping[str, int],
        windows: frozenset[str],
    ) -> Facts:
        patient = context.patient
        trend = Trend.NEW
        dismissed = False
        if patient.key is not None:
            last = state.last_seen(patient.key, output.scorer_id)
            if last is not None:
                before, current = ranks.get(last.band, 0), ranks.get(output.band, 0)
                trend = Trend.WORSENING if current > before else Trend.IMPROVING if current < before else Trend.STABLE
            dismissed = state.dismissals_since(patient.key, now - RECENT) > 0
        return Facts(
            labels={
                "scorer": output.scorer_id,
                "band": output.band,
                "hook": context.hook,
                "unit_type": context.unit.unit_type,
                "role": context.role,
                "code_status": patient.code_status or "",
            },
            comfort_care=patient.comfort_care,
            on_antibiotics=patient.on_antibiotics,
            age_years=patient.age_years,
            band_trend=trend,
            census=context.unit.census,
            staffing_ratio=context.unit.staffing_ratio,
            shift_alerts=state.interruptive_count(context.unit.unit_id, self.shift_began(now)),
            dismissed_recently=dismissed,
            windows=windows,
        )

    def shift_began(self, now: datetime) -> datetime:
        return shift_start(self._shifts, self._zone, now)

    def due_ladder_steps(self, patient: str, key: str, state: PolicyState, now: datetime) -> list[PolicyEvent]:
        """Rungs of this alert's open ladder that are due now, unacknowledged."""
        escalation = state.escalation(patient, key)
        if escalation is None or not escalation.open:
            return []
        s = escalation.started
        return list(due_steps(s.patient, s.alert_key, s.steps, s.at, escalation.reached, now))
