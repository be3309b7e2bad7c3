"""Delays, time windows, the shift budget and escalation ladders, on a fake clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from policy.escalation import due_escalation_steps
from policy.events import AlertAcknowledged, EscalationStepReached
from policy.port import Action, EscalationStep, Indicator, Reason
from policy.state import InMemoryPolicyState
from tests.unit.policy.support import START, FakeClock, Ward, context, output, policy


@pytest.fixture
def ward() -> Ward:
    return Ward(RoutedPolicy(bundled_policy("deterioration")), FakeClock())


def test_a_held_alert_is_released_at_the_first_call_after_it_is_due(ward: Ward) -> None:
    held = ward.decide(output("sepsis-hgb", "moderate", 0.5))
    ward.clock.advance(minutes=59)
    still = ward.decide(output("sepsis-hgb", "moderate", 0.5))
    ward.clock.advance(minutes=2)
    released = ward.decide(output("sepsis-hgb", "moderate", 0.5))

    assert held.action is Action.DELAY and held.delay_until == START + timedelta(hours=1)
    assert held.card is None
    assert still.action is Action.DELAY and still.delay_until == held.delay_until
    assert released.action is Action.SURFACE and Reason.DELAY_RELEASED in released.reasons
    assert released.card is not None and released.card.indicator is Indicator.WARNING


def test_a_confirming_observation_releases_a_hold_early(ward: Ward) -> None:
    ward.decide(output("sepsis-hgb", "moderate", 0.5))
    ward.clock.advance(minutes=10)
    stale = ward.decide(
        output("sepsis-hgb", "moderate", 0.5), context(observed={"lactate": START - timedelta(hours=2)})
    )
    fresh = ward.decide(output("sepsis-hgb", "moderate", 0.5), context(observed={"lactate": ward.clock.now}))

    assert stale.action is Action.DELAY
    assert fresh.action is Action.SURFACE and Reason.CONFIRMED in fresh.reasons


def test_a_hold_is_cancelled_when_antibiotics_are_started(ward: Ward) -> None:
    ward.decide(output("sepsis-hgb", "moderate", 0.5))
    ward.clock.advance(minutes=10)

    cancelled = ward.decide(output("sepsis-hgb", "moderate", 0.5), context(on_antibiotics=True))
    ward.clock.advance(hours=2)
    later = ward.decide(output("sepsis-hgb", "moderate", 0.5), context(on_antibiotics=True))

    assert cancelled.reasons == (Reason.ALREADY_TREATED, Reason.DELAY_CANCELLED)
    assert ward.state.pending_delay("p1", "sepsis-hgb") is None
    assert later.reasons == (Reason.ALREADY_TREATED,)


CANCEL_IF = """
id: cancel-if
version: "1"
routes:
  - name: hold
    match: {scorer: sepsis-hgb}
    action: delay
    delay: {for: 1h, cancel_if: {on_antibiotics: true}}
"""


def test_a_hold_is_cancelled_when_its_cancel_condition_comes_true() -> None:
    ward = Ward(policy(CANCEL_IF))
    ward.decide(output("sepsis-hgb", "high", 0.9))
    ward.clock.advance(minutes=5)

    decision = ward.decide(output("sepsis-hgb", "high", 0.9), context(on_antibiotics=True))

    assert decision.action is Action.SUPPRESS
    assert decision.reasons == (Reason.DELAY_CANCELLED, Reason.CONTEXT_CHANGED)


def test_a_warning_during_handover_is_held_until_the_window_closes(ward: Ward) -> None:
    ward.clock.now = START.replace(hour=7, minute=5)

    held = ward.decide(output("news2", "medium"))
    critical = ward.decide(output("news2", "high", 8), context(patient="p2"))

    assert held.action is Action.DELAY and held.reasons == (Reason.TIME_WINDOW,)
    assert held.delay_until == START.replace(hour=7, minute=30)
    assert critical.action is Action.ESCALATE


def test_handover_follows_local_time_in_summer() -> None:
    ward = Ward(RoutedPolicy(bundled_policy("deterioration")), FakeClock(START.replace(month=7, hour=6, minute=10)))

    # 06:10 UTC is 07:10 in London in July.
    assert ward.decide(output("news2", "medium")).reasons == (Reason.TIME_WINDOW,)


DOWNGRADE = """
id: downgrade
version: "1"
defaults: {time_windows: [rounds]}
time_windows:
  rounds: {start: "09:00", end: "11:00", effect: downgrade}
"""


def test_a_downgrade_window_shows_a_warning_as_a_passive_card_but_spares_a_critical() -> None:
    ward = Ward(policy(DOWNGRADE))

    warning = ward.decide(output("news2", "medium"))
    critical = ward.decide(output("news2", "high", 8))

    assert warning.card is not None and warning.card.indicator is Indicator.INFO
    assert Reason.TIME_WINDOW in warning.reasons
    assert critical.card is not None and critical.card.indicator is Indicator.CRITICAL


BUDGET = """
id: budget
version: "1"
budget: {shifts: ["07:00", "19:00"], max_interruptive: {ward: 2}}
"""


def test_the_shift_budget_downgrades_warnings_but_never_drops_a_critical() -> None:
    ward = Ward(policy(BUDGET))
    for patient in ("a", "b"):
        assert ward.decide(output("news2", "medium"), context(patient=patient)).card is not None

    warning = ward.decide(output("news2", "medium"), context(patient="c"))
    critical = ward.decide(output("news2", "high", 8), context(patient="d"))
    other_unit = ward.decide(output("news2", "medium"), context(patient="e", unit="5S"))

    assert warning.action is Action.SURFACE and warning.reasons == (Reason.ROUTE_MATCHED, Reason.BUDGET_DOWNGRADE)
    assert warning.card is not None and warning.card.indicator is Indicator.INFO
    assert critical.action is Action.SURFACE
    assert critical.card is not None and critical.card.indicator is Indicator.CRITICAL
    assert other_unit.card is not None and other_unit.card.indicator is Indicator.WARNING


def test_the_budget_starts_again_at_the_next_shift() -> None:
    ward = Ward(policy(BUDGET))
    for patient in ("a", "b"):
        ward.decide(output("news2", "medium"), context(patient=patient))
    ward.clock.now = START.replace(hour=19, minute=1)

    decision = ward.decide(output("news2", "medium"), context(patient="c"))

    assert decision.card is not None and decision.card.indicator is Indicator.WARNING


def test_outputs_of_one_call_count_against_the_budget_in_turn() -> None:
    routed = policy(BUDGET)
    outputs = [output("news2", "medium"), output("qsofa", "positive", 2), output("sirs", "positive", 3)]

    evaluations = routed.evaluate_all(outputs, context(), InMemoryPolicyState(), START)

    indicators = [e.decision.card.indicator for e in evaluations if e.decision.card]
    assert indicators == [Indicator.WARNING, Indicator.WARNING, Indicator.INFO]


def test_news2_high_climbs_the_ladder_while_nobody_acknowledges(ward: Ward) -> None:
    started = ward.decide(output("news2", "high", 8))
    ward.clock.advance(minutes=14)
    early = due_escalation_steps(ward.state, ward.clock.now)
    ward.clock.advance(minutes=1)
    charge = due_escalation_steps(ward.state, ward.clock.now)
    ward.record(*charge)
    ward.clock.advance(minutes=15)
    rapid = due_escalation_steps(ward.state, ward.clock.now)

    assert started.action is Action.ESCALATE
    assert [s.role for s in started.escalation] == ["nurse", "charge-nurse", "rapid-response"]
    assert early == []
    assert [e.step.role for e in charge] == ["charge-nurse"]
    assert [e.step.role for e in rapid] == ["rapid-response"]


def test_an_acknowledged_ladder_stops(ward: Ward) -> None:
    ward.decide(output("news2", "high", 8))
    ward.clock.advance(minutes=5)
    ward.record(AlertAcknowledged("p1", "news2", ward.clock.now))
    ward.clock.advance(minutes=40)

    assert due_escalation_steps(ward.state, ward.clock.now) == []
    assert ward.decide(output("news2", "high", 8)).reasons == (Reason.DUPLICATE,)
    assert ward.last is not None
    assert not [e for e in ward.last.events if isinstance(e, EscalationStepReached)]


def test_a_repeat_output_during_an_open_ladder_reports_the_rungs_now_due(ward: Ward) -> None:
    ward.decide(output("news2", "high", 8))
    ward.clock.advance(minutes=31)

    decision = ward.decide(output("news2", "high", 8))

    assert decision.reasons == (Reason.DUPLICATE,)
    assert ward.last is not None
    reached = [e.step for e in ward.last.events if isinstance(e, EscalationStepReached)]
    assert reached == [EscalationStep("charge-nurse", "pager", 15), EscalationStep("rapid-response", "pager", 30)]
