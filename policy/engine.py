"""The routed policy: one decision per risk output, from a policy document's routes and its muting mechanisms.

Stages, in order: no data → route → inhibition → silence → lockout → snooze → pending delay → dedup → route delay →
time windows → budget → card. Each stage may settle the decision; every stage that looked leaves a trace step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import TypeVar

from clinical.model import ClinicalContext
from policy.context import PolicyContext
from policy.document import PolicyDocument, Trend
from policy.escalation import due_steps
from policy.events import OutputEvaluated, PolicyEvent
from policy.matching import Facts
from policy.mechanisms import DEFAULT_BAND_RANK, CompiledInhibition, compile_inhibitions
from policy.overlay import OverlayState
from policy.port import Action, CardContent, Decision, EscalationStep, Reason
from policy.routing import CompiledRoute, RouteMemo, compile_routes
from policy.stages import Run, Settled, finish, run_stages
from policy.state import InMemoryPolicyState, PolicyState
from policy.trace import Mechanism, RouteAttempt, Step, Trace
from policy.windows import DEFAULT_SHIFTS, open_windows, shift_start
from scoring.port import RiskOutput

# When an action ranks higher it wins among the routes a `continue` lets match: a later route can add urgency,
# never take it away.
_ACTION_RANK = {Action.SUPPRESS: 0, Action.DELAY: 1, Action.SURFACE: 2, Action.ESCALATE: 3}
# "Dismissed recently", as routes may test it.
RECENT = timedelta(hours=24)
# Entries each clock cache keeps before it starts afresh (a live service sees ever new instants).
_CACHE_SIZE = 4096
_OpenWindows = tuple[Mapping[str, datetime], frozenset[str]]
_K = TypeVar("_K")
_V = TypeVar("_V")


def _bounded(cache: dict[_K, _V]) -> dict[_K, _V]:
    return cache if len(cache) < _CACHE_SIZE else {}


@dataclass(frozen=True, slots=True)
class Evaluation:
    decision: Decision
    trace: Trace
    # What the decision implies for the state; the caller applies them (the engine never writes).
    events: tuple[PolicyEvent, ...]


@dataclass(frozen=True, slots=True)
class _Routed:
    """Where the route tree sends an output: the route that decides, its trace step, and every route tried."""

    chosen: CompiledRoute
    step: Step
    attempts: tuple[RouteAttempt, ...]
    matched: tuple[str, ...]


def _routed(matched: list[CompiledRoute], attempts: list[RouteAttempt]) -> _Routed:
    chosen = max(matched, key=lambda r: _ACTION_RANK[r.settings.action])
    also = [r.route_id for r in matched if r is not chosen]
    detail = f"{chosen.route_id}: {chosen.settings.action.value}" + (f" (also matched {also})" if also else "")
    return _Routed(chosen, Step(Mechanism.ROUTE, False, detail), tuple(attempts), tuple(r.route_id for r in matched))


# Not frozen, as it is private: a frozen dataclass costs several times as much to build.
@dataclass(slots=True)
class _Call:
    """What every output of one hook call shares, worked out once for the call."""

    context: PolicyContext
    now: datetime
    # The pseudonymous patient key.
    patient: str | None
    # The call's labels: hook, unit type, role and code status.
    labels: Mapping[str, str]
    window_ends: Mapping[str, datetime]
    open_windows: frozenset[str]


class _StatePast:
    """What the policy state says about one output, each read the first time a matcher or a stage asks for it: a
    policy that never matches on the band trend or on dismissals does not pay for them, nor a decision settled
    before the budget for the shift's count. The state does not change while one output is decided."""

    __slots__ = ("_call", "_dismissed", "_output", "_policy", "_ranks", "_shift_alerts", "_state", "_trend")

    def __init__(
        self, policy: RoutedPolicy, state: PolicyState, call: _Call, output: RiskOutput, ranks: Mapping[str, int]
    ) -> None:
        self._policy, self._state, self._call, self._output, self._ranks = policy, state, call, output, ranks
        self._trend: Trend | None = None
        self._dismissed: bool | None = None
        self._shift_alerts: int | None = None

    @property
    def band_trend(self) -> Trend:
        if self._trend is None:
            self._trend = self._read_trend()
        return self._trend

    def _read_trend(self) -> Trend:
        patient = self._call.patient
        last = None if patient is None else self._state.last_seen(patient, self._output.scorer_id)
        if last is None:
            return Trend.NEW
        before, current = self._ranks.get(last.band, 0), self._ranks.get(self._output.band, 0)
        return Trend.WORSENING if current > before else Trend.IMPROVING if current < before else Trend.STABLE

    @property
    def dismissed_recently(self) -> bool:
        if self._dismissed is None:
            patient, now = self._call.patient, self._call.now
            self._dismissed = patient is not None and self._state.dismissals_since(patient, now - RECENT) > 0
        return self._dismissed

    @property
    def shift_alerts(self) -> int:
        if self._shift_alerts is None:
            call = self._call
            began = self._policy.shift_began(call.now)
            self._shift_alerts = self._state.interruptive_count(call.context.unit.unit_id, began)
        return self._shift_alerts


class RoutedPolicy:
    """A policy document made executable. Build once per document version; `evaluate` is pure."""

    def __init__(self, document: PolicyDocument, *, state: PolicyState | None = None) -> None:
        self.document = document
        self.content_hash = document.content_hash()
        # The declared version plus the content hash: two documents can never pass for the same version.
        self._version = f"{document.version}+{self.content_hash[:12]}"
        self._root = compile_routes(document)
        self._route = RouteMemo(self._root, _routed)
        self._inhibitions = compile_inhibitions(document.inhibit_rules)
        self._ranks: dict[str, Mapping[str, int]] = {
            scorer: {band: i for i, band in enumerate(bands)} for scorer, bands in document.scorers.items()
        }
        self._zone = document.zone
        self._shifts = tuple(document.budget.shifts) if document.budget else DEFAULT_SHIFTS
        # `decide` (the Policy port) has no state argument; it reads this one, empty unless the wiring gives one.
        self._state: PolicyState = state if state is not None else InMemoryPolicyState()
        # Clock arithmetic is pure in `now`; replay asks about the same simulated hours for every stay, so it is
        # remembered (keyed with the time zone too, as equal instants in other zones render differently).
        self._shift_cache: dict[tuple[datetime, tzinfo | None], datetime] = {}
        self._window_cache: dict[tuple[datetime, tzinfo | None, frozenset[str]], _OpenWindows] = {}

    @property
    def policy_id(self) -> str:
        return self.document.id

    @property
    def version(self) -> str:
        return self._version

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
        call = self._call(context, now)
        # The overlay is made only once a later output needs it: until then it would read through to `state`.
        overlay: OverlayState | None = None
        out = []
        for i, output in enumerate(outputs):
            evaluation = self._evaluate(output, call, state if overlay is None else overlay, outputs)
            out.append(evaluation)
            if i + 1 < len(outputs):
                overlay = overlay or OverlayState(state)
                overlay.add(evaluation.events)
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
        return self._evaluate(output, self._call(context, now), state, siblings)

    def _call(self, context: PolicyContext, now: datetime) -> _Call:
        window_ends, open_names = self._open_windows(now, context.open_windows)
        patient = context.patient
        labels = {
            "hook": context.hook,
            "unit_type": context.unit.unit_type,
            "role": context.role,
            "code_status": patient.code_status or "",
        }
        return _Call(context, now, patient.key, labels, window_ends, open_names)

    def _evaluate(
        self, output: RiskOutput, call: _Call, state: PolicyState, siblings: Sequence[RiskOutput]
    ) -> Evaluation:
        now = call.now
        ranks = self._ranks.get(output.scorer_id, DEFAULT_BAND_RANK)
        seen: list[PolicyEvent] = []
        if call.patient is not None:
            seen.append(OutputEvaluated(call.patient, output.scorer_id, output.band, now))
        if output.score is None:
            decision = self._decision(output, now, Action.SUPPRESS, (Reason.NO_DATA,), "root")
            step = Step(Mechanism.NO_DATA, True, "the scorer had no inputs: never shown as low risk")
            return Evaluation(decision, Trace((), (), "root", (step,)), tuple(seen))
        facts = self._facts(output, call, state, ranks)
        routed = self._route(facts)
        chosen = routed.chosen
        run = Run(
            policy=self,
            output=output,
            context=call.context,
            state=state,
            now=now,
            siblings=siblings,
            facts=facts,
            route=chosen,
            ranks=ranks,
            window_ends=call.window_ends,
        )
        run.steps.append(routed.step)
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
        trace = Trace(routed.attempts, routed.matched, chosen.route_id, tuple(run.steps))
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
        # In field order, positionally: keyword arguments cost a frozen dataclass noticeably more per decision.
        return Decision(
            action,
            reasons,
            self.document.id,
            self._version,
            route_id,
            output.input_hash,
            now,
            card,
            delay_until,
            escalation,
        )

    def _facts(self, output: RiskOutput, call: _Call, state: PolicyState, ranks: Mapping[str, int]) -> Facts:
        patient = call.context.patient
        unit = call.context.unit
        return Facts(
            labels={"scorer": output.scorer_id, "band": output.band, **call.labels},
            comfort_care=patient.comfort_care,
            on_antibiotics=patient.on_antibiotics,
            age_years=patient.age_years,
            census=unit.census,
            staffing_ratio=unit.staffing_ratio,
            windows=call.open_windows,
            past=_StatePast(self, state, call, output, ranks),
        )

    def shift_began(self, now: datetime) -> datetime:
        key = (now, now.tzinfo)
        began = self._shift_cache.get(key)
        if began is None:
            began = shift_start(self._shifts, self._zone, now)
            self._shift_cache = _bounded(self._shift_cache)
            self._shift_cache[key] = began
        return began

    def _open_windows(self, now: datetime, external: frozenset[str]) -> _OpenWindows:
        """Open windows with when each closes, and their names."""
        key = (now, now.tzinfo, external)
        found = self._window_cache.get(key)
        if found is None:
            ends = open_windows(self.document.time_windows, self._zone, now, external)
            found = (MappingProxyType(ends), frozenset(ends))
            self._window_cache = _bounded(self._window_cache)
            self._window_cache[key] = found
        return found

    def due_ladder_steps(self, patient: str, key: str, state: PolicyState, now: datetime) -> list[PolicyEvent]:
        """Rungs of this alert's open ladder that are due now, unacknowledged."""
        escalation = state.escalation(patient, key)
        if escalation is None or not escalation.open:
            return []
        s = escalation.started
        return list(due_steps(s.patient, s.alert_key, s.steps, s.at, escalation.reached, now))
