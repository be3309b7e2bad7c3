"""Properties of the routed policy over arbitrary outputs, contexts and histories on a simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clinical.model import ClinicalContext
from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from policy.escalation import indicator_rank
from policy.events import AlertAcknowledged, AlertDismissed, AlertSnoozed, EscalationStarted, EscalationStepReached
from policy.passthrough import PassThroughPolicy
from policy.port import Action, Indicator
from policy.stages import BAND_INDICATOR
from policy.state import InMemoryPolicyState
from tests.strategies import policy_contexts, policy_histories, risk_outputs

DETERIORATION = RoutedPolicy(bundled_policy("deterioration"))
SURFACE_ALL = RoutedPolicy(bundled_policy("surface-all"))
# 06:50 local: the runs cross the 07:00 handover and shift change.
START = datetime(2026, 1, 14, 6, 50, tzinfo=UTC)


def _replay(
    history: list[Any], routed: RoutedPolicy = DETERIORATION
) -> tuple[InMemoryPolicyState, datetime, list[Any]]:
    """Apply a drawn history; return the state, the clock and every evaluation made on the way."""
    state, now, evaluations = InMemoryPolicyState(), START, []
    for wait, kind, out, ctx in history:
        now += timedelta(minutes=wait)
        patient = ctx.patient.key or "p1"
        if kind == "decide":
            evaluation = routed.evaluate(out, ctx, state, now)
            state.apply(evaluation.events)
            evaluations.append((out, evaluation))
        elif kind == "dismiss":
            state.apply(
                [AlertDismissed(patient, out.scorer_id, out.band, BAND_INDICATOR.get(out.band, Indicator.INFO), now)]
            )
        elif kind == "snooze":
            state.apply([AlertSnoozed(patient, out.scorer_id, now + timedelta(minutes=wait + 30), now)])
        else:
            state.apply([AlertAcknowledged(patient, out.scorer_id, now)])
    return state, now, evaluations


@settings(max_examples=60, deadline=None)
@given(history=policy_histories())
def test_a_suppressed_or_delayed_decision_never_carries_a_card(history: list[Any]) -> None:
    _, _, evaluations = _replay(history)

    for _, evaluation in evaluations:
        decision = evaluation.decision
        if decision.action in (Action.SUPPRESS, Action.DELAY):
            assert decision.card is None
        else:
            assert decision.card is not None and len(decision.card.summary) < 140
        if decision.action is Action.DELAY:
            assert decision.delay_until is not None and decision.delay_until > decision.decided_at


@settings(max_examples=60, deadline=None)
@given(history=policy_histories(), out=risk_outputs(), ctx=policy_contexts(), wait=st.integers(0, 600))
def test_the_same_input_and_state_give_the_same_decision(history: list[Any], out: Any, ctx: Any, wait: int) -> None:
    state, now, _ = _replay(history)
    twin, _, _ = _replay(history)
    now += timedelta(minutes=wait)

    first = DETERIORATION.evaluate(out, ctx, state, now)
    again = DETERIORATION.evaluate(out, ctx, state, now)
    on_twin = DETERIORATION.evaluate(out, ctx, twin, now)

    assert first == again == on_twin


@settings(max_examples=60, deadline=None)
@given(history=policy_histories(max_steps=20))
def test_an_escalation_never_lowers_the_indicator(history: list[Any]) -> None:
    _, _, evaluations = _replay(history)

    climbed: dict[tuple[str, str], int] = {}
    for out, evaluation in evaluations:
        decision = evaluation.decision
        if decision.action is Action.ESCALATE:
            assert decision.card is not None
            band = BAND_INDICATOR.get(out.band, Indicator.INFO)
            assert indicator_rank(decision.card.indicator) >= indicator_rank(band)
            assert decision.card.indicator is Indicator.CRITICAL
        for event in evaluation.events:
            if isinstance(event, EscalationStepReached):
                key = (event.patient, event.alert_key)
                # A ladder only climbs: each rung reached is above the last one reached for the same alert.
                assert event.index > climbed.get(key, 0)
                climbed[key] = event.index
            elif isinstance(event, EscalationStarted):
                climbed.pop((event.patient, event.alert_key), None)


@settings(max_examples=100, deadline=None)
@given(out=risk_outputs(), ctx=policy_contexts())
def test_surface_all_decides_as_the_pass_through_policy_does(out: Any, ctx: Any) -> None:
    routed = SURFACE_ALL.evaluate(out, ctx, InMemoryPolicyState(), START).decision
    passed = PassThroughPolicy().decide(out, ClinicalContext(patient=None), START)

    assert routed.action is passed.action
    assert routed.reasons == passed.reasons
    if passed.card is not None:
        assert routed.card is not None
        assert routed.card.indicator is passed.card.indicator
        assert routed.card.summary == passed.card.summary
        assert routed.card.detail == passed.card.detail.strip()
