"""The engine's stages after routing: each looks at one mechanism and either settles the decision or lets it pass."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from policy.context import PolicyContext
from policy.escalation import due_steps, raise_indicator
from policy.events import (
    AlertDelayed,
    AlertSuppressed,
    AlertSurfaced,
    DelayCancelled,
    DelayReleased,
    EscalationStarted,
    PolicyEvent,
)
from policy.matching import CompiledMatch, Facts
from policy.mechanisms import (
    dedup_verdict,
    firing_alerts,
    inhibited_by,
    lockout_verdict,
    silenced_by,
    snooze_verdict,
)
from policy.port import Action, CardContent, Indicator, Reason
from policy.routing import CompiledRoute
from policy.state import PolicyState
from policy.templates import DEFAULT_DETAIL, DEFAULT_SUMMARY, render, template_values
from policy.trace import Mechanism, Step
from scoring.port import RiskOutput

if TYPE_CHECKING:
    from policy.engine import RoutedPolicy

# The indicator a band gets when the route does not set one: the pass-through policy's mapping, so that the
# surface-all policy decides exactly as it does. Other bands (e.g. the model's "moderate") need a route indicator.
BAND_INDICATOR: Mapping[str, Indicator] = {
    "low": Indicator.INFO,
    "low-medium": Indicator.WARNING,
    "medium": Indicator.WARNING,
    "high": Indicator.CRITICAL,
    "negative": Indicator.INFO,
    "positive": Indicator.WARNING,
}
# How long a surfaced alert counts as firing when its route sets no dedup window.
DEFAULT_ACTIVE = timedelta(hours=1)


# Not frozen: made and read once per decision, never shared, and a frozen dataclass costs several times as much
# to build.
@dataclass(slots=True)
class Settled:
    action: Action
    reasons: tuple[Reason, ...]
    card: CardContent | None = None
    delay_until: datetime | None = None


@dataclass(slots=True)
class Run:
    """One decision in progress: its inputs, and what the stages have found so far."""

    policy: RoutedPolicy
    output: RiskOutput
    context: PolicyContext
    state: PolicyState
    now: datetime
    siblings: Sequence[RiskOutput]
    facts: Facts
    route: CompiledRoute
    ranks: Mapping[str, int]
    # Open time windows by name, with when each closes.
    window_ends: Mapping[str, datetime]
    steps: list[Step] = field(default_factory=list)
    events: list[PolicyEvent] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    released: bool = False
    bypass_dedup: bool = False
    indicator: Indicator | None = None
    # The pseudonymous patient and the alert key, read by every stage: kept as plain fields, set once.
    patient: str | None = field(init=False)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.patient = self.context.patient.key
        self.key = self.output.scorer_id

    @property
    def rank(self) -> int:
        return self.ranks.get(self.output.band, 0)

    def base_reason(self) -> Reason:
        return self.route.settings.reason or Reason.ROUTE_MATCHED

    def note(self, mechanism: Mechanism, changed: bool, detail: str) -> None:
        self.steps.append(Step(mechanism, changed, detail))

    def suppress(self, mechanism: Mechanism, detail: str, *reasons: Reason) -> Settled:
        self.note(mechanism, True, detail)
        unique = tuple(dict.fromkeys(reasons))
        if self.patient is not None:
            self.events.append(AlertSuppressed(self.patient, self.key, self.output.band, unique, self.now))
        return Settled(Action.SUPPRESS, unique)

    def hold(self, until: datetime, reason: Reason, detail: str, confirm_kind: str | None = None) -> Settled:
        self.note(Mechanism.DELAY if reason is not Reason.TIME_WINDOW else Mechanism.TIME_WINDOW, True, detail)
        if self.patient is not None:
            self.events.append(
                AlertDelayed(
                    self.patient, self.key, self.output.band, self.route.route_id, self.now, until, reason, confirm_kind
                )
            )
        return Settled(Action.DELAY, (reason, *self.reasons), delay_until=until)


def _route_suppress(run: Run) -> Settled | None:
    if run.route.settings.action is not Action.SUPPRESS:
        return None
    reasons = [run.base_reason()]
    pending = run.state.pending_delay(run.patient, run.key) if run.patient is not None else None
    if pending is not None and run.patient is not None:
        # What was held now routes to suppression (it resolved, or the context changed, e.g. antibiotics were
        # started): the hold ends, with the route's reason as the why.
        run.events.append(DelayCancelled(run.patient, run.key, run.base_reason(), run.now))
        reasons.append(Reason.DELAY_CANCELLED)
    return run.suppress(Mechanism.ROUTE, f"route {run.route.route_id} suppresses", *reasons)


_NOT_INHIBITED = Step(Mechanism.INHIBITION, False, "no inhibiting condition")


def _inhibition(run: Run) -> Settled | None:
    rules = run.policy.inhibitions
    if not rules:
        return None
    encounter = run.context.patient.encounter_id
    # What is firing is looked up only when a rule aimed at this output is set off by another alert.
    aimed = [r for r in rules if r.target.matches(run.facts)]
    needed = any(r.source.output_labels for r in aimed)
    firing = firing_alerts(run.output, run.siblings, run.state, run.patient, encounter, run.now) if needed else []
    found = inhibited_by(aimed, run.facts, firing, encounter)
    if found is None:
        run.steps.append(_NOT_INHIBITED)
        return None
    rule, source = found
    return run.suppress(Mechanism.INHIBITION, f"{rule.name}: muted by {source}", Reason.INHIBITED, rule.rule.reason)


def _silence(run: Run) -> Settled | None:
    found = silenced_by(run.state, run.facts, run.patient, run.context.unit.unit_id, run.now)
    if found is None:
        return None
    return run.suppress(Mechanism.SILENCE, found, Reason.SILENCED)


def _lockout(run: Run) -> Settled | None:
    if run.patient is None:
        return None
    verdict = lockout_verdict(run.state, run.patient, run.key, run.rank, run.ranks, run.route.settings.lockout, run.now)
    if verdict is None:
        return None
    if verdict.mute:
        return run.suppress(Mechanism.LOCKOUT, verdict.detail, Reason.LOCKED_OUT)
    run.note(Mechanism.LOCKOUT, True, verdict.detail)
    run.reasons.append(Reason.WORSENED)
    run.bypass_dedup = True
    return None


def _snooze(run: Run) -> Settled | None:
    if run.patient is None:
        return None
    verdict = snooze_verdict(run.state, run.patient, run.key, run.now)
    if verdict is None:
        return None
    if verdict.mute:
        return run.suppress(Mechanism.SNOOZE, verdict.detail, Reason.SNOOZED)
    run.note(Mechanism.SNOOZE, True, verdict.detail)
    run.reasons.append(Reason.SNOOZE_EXPIRED)
    run.bypass_dedup = True
    return None


def _pending_delay(run: Run) -> Settled | None:
    if run.patient is None:
        return None
    pending = run.state.pending_delay(run.patient, run.key)
    if pending is None:
        return None
    spec = run.route.settings.delay
    if spec is not None and spec.cancel_if is not None and CompiledMatch(spec.cancel_if).matches(run.facts):
        run.events.append(DelayCancelled(run.patient, run.key, Reason.CONTEXT_CHANGED, run.now))
        return run.suppress(
            Mechanism.DELAY,
            "the context changed while held: hold cancelled",
            Reason.DELAY_CANCELLED,
            Reason.CONTEXT_CHANGED,
        )
    observed = run.context.patient.observed.get(pending.confirm_kind) if pending.confirm_kind else None
    if observed is not None and observed > pending.at:
        why, detail = Reason.CONFIRMED, f"confirmed by a {pending.confirm_kind} observation at {observed.isoformat()}"
    elif run.now >= pending.until:
        why, detail = Reason.DELAY_RELEASED, f"held until {pending.until.isoformat()}: due"
    else:
        run.note(Mechanism.DELAY, True, f"still held until {pending.until.isoformat()}")
        return Settled(Action.DELAY, (pending.reason,), delay_until=pending.until)
    run.events.append(DelayReleased(run.patient, run.key, why, run.now))
    run.note(Mechanism.DELAY, True, f"released: {detail}")
    run.reasons.extend(dict.fromkeys((Reason.DELAY_RELEASED, why)))
    run.released = True
    return None


def _dedup(run: Run) -> Settled | None:
    if run.patient is None or run.bypass_dedup or run.released:
        return None
    last = run.state.last_surfaced(run.patient, run.key)
    window = run.route.settings.dedup
    verdict = dedup_verdict(last, run.rank, run.ranks, last.at + window if last and window else None, run.now)
    if verdict is None:
        return None
    if not verdict.mute:
        run.note(Mechanism.DEDUP, True, verdict.detail)
        run.reasons.append(Reason.WORSENED)
        return None
    # The card is already in front of someone; an open ladder still climbs if nobody has answered it.
    steps = run.policy.due_ladder_steps(run.patient, run.key, run.state, run.now)
    if steps:
        run.note(Mechanism.ESCALATION, True, f"{len(steps)} more step(s) of the ladder due, unacknowledged")
    settled = run.suppress(Mechanism.DEDUP, verdict.detail, Reason.DUPLICATE)
    run.events.extend(steps)
    return settled


def _route_delay(run: Run) -> Settled | None:
    spec = run.route.settings.delay
    if run.route.settings.action is not Action.DELAY or spec is None or run.released:
        return None
    reason = Reason.AWAITING_CONFIRMATION if spec.until_observation else Reason.DELAYED
    until = run.now + spec.for_
    wait = f" or a {spec.until_observation} observation" if spec.until_observation else ""
    return run.hold(until, reason, f"held until {until.isoformat()}{wait}", spec.until_observation)


def _indicator(run: Run) -> Indicator:
    settings = run.route.settings
    base = settings.indicator or BAND_INDICATOR.get(run.output.band, Indicator.INFO)
    return raise_indicator(base) if settings.action is Action.ESCALATE else base


def _time_windows(run: Run) -> Settled | None:
    run.indicator = _indicator(run)
    document = run.policy.document
    for name in run.route.settings.time_windows:
        if name not in run.facts.windows:
            continue
        window = document.time_windows[name]
        if run.indicator is Indicator.CRITICAL and window.spare_critical:
            run.note(Mechanism.TIME_WINDOW, False, f"{name} is open, but critical alerts are spared")
            continue
        if window.effect == "delay" and not run.released:
            ends = run.window_ends[name]
            return run.hold(ends, Reason.TIME_WINDOW, f"{name} is open: held until {ends.isoformat()}")
        if window.effect == "downgrade" and run.indicator is Indicator.WARNING:
            run.indicator = Indicator.INFO
            run.reasons.append(Reason.TIME_WINDOW)
            run.note(Mechanism.TIME_WINDOW, True, f"{name} is open: shown as a passive info card")
    return None


def _budget(run: Run) -> Settled | None:
    budget = run.policy.document.budget
    if budget is None or not run.route.settings.budget or run.indicator is Indicator.INFO:
        return None
    unit = run.context.unit
    limit = budget.max_interruptive.get(unit.unit_type)
    if limit is None:
        return None
    used = run.facts.shift_alerts
    if used < limit:
        run.note(Mechanism.BUDGET, False, f"{used} of {limit} interruptive cards this shift")
        return None
    if run.indicator is Indicator.CRITICAL:
        run.note(Mechanism.BUDGET, False, f"budget of {limit} spent, but a critical card is never downgraded")
        return None
    run.indicator = Indicator.INFO
    run.reasons.append(Reason.BUDGET_DOWNGRADE)
    run.note(Mechanism.BUDGET, True, f"budget of {limit} interruptive cards spent this shift: shown as info")
    return None


_STAGES: tuple[Callable[[Run], Settled | None], ...] = (
    _route_suppress,
    _inhibition,
    _silence,
    _lockout,
    _snooze,
    _pending_delay,
    _dedup,
    _route_delay,
    _time_windows,
    _budget,
)


def run_stages(run: Run) -> Settled | None:
    for stage in _STAGES:
        settled = stage(run)
        if settled is not None:
            return settled
    return None


def finish(run: Run) -> Settled:
    """Surface or escalate: render the card and record the events the decision implies."""
    settings = run.route.settings
    action = Action.ESCALATE if settings.action is Action.ESCALATE else Action.SURFACE
    indicator = run.indicator or _indicator(run)
    values = template_values(
        run.output,
        hook=run.context.hook,
        role=run.context.role,
        unit_type=run.context.unit.unit_type,
        route=run.route.route_id,
    )
    card = CardContent(
        summary=render(settings.card.summary if settings.card else DEFAULT_SUMMARY, values, summary=True),
        indicator=indicator,
        detail=render(settings.card.detail if settings.card else DEFAULT_DETAIL, values, summary=False).strip(),
    )
    reasons = [run.base_reason(), *run.reasons]
    if action is Action.ESCALATE:
        reasons.append(Reason.ESCALATED)
    if run.output.partial:
        reasons.append(Reason.PARTIAL_INPUTS)
    if run.patient is not None:
        active = run.now + (settings.dedup or DEFAULT_ACTIVE)
        unit, encounter = run.context.unit.unit_id, run.context.patient.encounter_id
        run.events.append(
            AlertSurfaced(
                run.patient,
                run.key,
                run.key,
                run.output.band,
                indicator,
                run.route.route_id,
                run.now,
                active,
                unit,
                encounter,
            )
        )
        if action is Action.ESCALATE:
            _start_ladder(run)
    return Settled(action, tuple(dict.fromkeys(reasons)), card=card)


def _start_ladder(run: Run) -> None:
    assert run.patient is not None
    ladder = run.route.settings.escalation
    run.events.append(EscalationStarted(run.patient, run.key, run.output.band, ladder, run.now))
    # The first rung is notified at once; any other rung with no wait comes due at the same moment.
    run.events.extend(due_steps(run.patient, run.key, ladder, run.now, 1, run.now))
    who = " → ".join(f"{s.role} via {s.channel} (+{s.after_minutes} min)" for s in ladder) or "no ladder"
    run.note(Mechanism.ESCALATION, True, f"escalation started: {who}")
