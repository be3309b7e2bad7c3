"""Facts a route reads from the policy state (band trend, recent dismissals, the shift's interruptive cards) are
read as the state stood before each output: in one call, an output sees what the outputs before it implied."""

from __future__ import annotations

from datetime import timedelta

from policy.engine import Evaluation
from policy.events import AlertDismissed
from policy.port import Action, Indicator
from policy.silences import create_silence
from policy.state import InMemoryPolicyState
from scoring.port import RiskOutput
from tests.unit.policy.support import START, context, output, policy

PAST = """
id: past
version: "1"
scorers: {news2: [low, low-medium, medium, high], qsofa: [negative, positive]}
defaults: {indicator: warning}
budget: {shifts: ["07:00", "19:00"], max_interruptive: {ward: 5}}
routes:
  - name: dismissed
    match: {dismissed_recently: true}
    action: suppress
    reason: below-threshold
  - name: busy
    match: {shift_alerts_min: 1}
    action: delay
    delay: {for: 30m}
  - name: worse
    match: {band_trend: worsening}
    indicator: critical
"""


def _one_by_one(text: str, outs: list[RiskOutput], state: InMemoryPolicyState) -> list[Evaluation]:
    """The outputs decided in turn, each event applied before the next: what one call must equal."""
    routed, out = policy(text), []
    for o in outs:
        evaluation = routed.evaluate(o, context(), state, START, siblings=outs)
        state.apply(evaluation.events)
        out.append(evaluation)
    return out


def test_a_card_shown_earlier_in_the_call_counts_for_the_next_output_of_the_same_call() -> None:
    outs = [output("news2", "medium"), output("qsofa", "positive", 2)]

    together = policy(PAST).evaluate_all(outs, context(), InMemoryPolicyState(), START)

    assert [e.decision.action for e in together] == [Action.SURFACE, Action.DELAY]
    assert together[1].decision.route == "busy"
    assert together == _one_by_one(PAST, outs, InMemoryPolicyState())


def test_the_band_trend_and_a_recent_dismissal_are_read_from_the_state_before_the_call() -> None:
    earlier = START - timedelta(hours=4)  # the shift before: its card does not count against this one
    state = InMemoryPolicyState()
    state.apply(policy(PAST).evaluate(output("news2", "low", 1), context(), state, earlier).events)
    worse = policy(PAST).evaluate_all([output("news2", "high", 9)], context(), state, START)
    state.apply([AlertDismissed("p1", "qsofa", "positive", Indicator.WARNING, START - timedelta(hours=1))])

    after_dismissal = policy(PAST).evaluate_all([output("news2", "high", 9)], context(), state, START)

    assert worse[0].decision.route == "worse" and worse[0].decision.card is not None
    assert worse[0].decision.card.indicator is Indicator.CRITICAL
    assert after_dismissal[0].decision.route == "dismissed"


def test_a_silence_on_a_state_fact_mutes_as_the_state_says() -> None:
    state = InMemoryPolicyState()
    state.apply(
        [
            create_silence(
                silence_id="s1",
                match={"shift_alerts_min": 1},
                starts_at=START,
                ends_at=START + timedelta(hours=1),
                author="informaticist",
                comment="quiet once one card is out",
                now=START,
            )
        ]
    )
    outs = [output("news2", "high", 9), output("news2", "medium")]
    text = PAST.replace("shift_alerts_min: 1", "shift_alerts_min: 99")

    together = policy(text).evaluate_all(outs, context(), state, START)

    assert [e.decision.action for e in together] == [Action.SURFACE, Action.SUPPRESS]
    assert [s.mechanism.value for s in together[1].trace.steps][-1] == "silence"
