"""The route tree: first match wins, `continue` lets later routes match, children inherit, the trace says why."""

from __future__ import annotations

from policy.context import PolicyContext
from policy.engine import Evaluation
from policy.port import Action, Indicator, Reason
from policy.state import InMemoryPolicyState
from scoring.port import RiskOutput
from tests.unit.policy.support import START, context, output, policy

TREE = """
id: tree
version: "1"
scorers: {news2: [low, low-medium, medium, high]}
defaults: {action: surface, indicator: info}
routes:
  - name: news2
    match: {scorer: news2}
    indicator: warning
    routes:
      - name: news2-icu
        match: {unit_type: icu}
        action: suppress
        reason: below-threshold
      - name: news2-high
        match: {band: high}
        indicator: critical
  - name: news2-again
    match: {scorer: news2}
    action: suppress
  - name: anything-else
    match: {scorer: {regex: "q.*"}}
"""


def _evaluate(text: str, out: RiskOutput | None = None, ctx: PolicyContext | None = None) -> Evaluation:
    return policy(text).evaluate(out or output(), ctx or context(), InMemoryPolicyState(), START)


def test_the_first_matching_route_wins_and_later_siblings_are_not_tried() -> None:
    evaluation = _evaluate(TREE, output("news2", "medium"))

    assert evaluation.decision.route == "news2"
    assert evaluation.decision.action is Action.SURFACE
    assert "news2-again" not in [a.route for a in evaluation.trace.attempts]


def test_a_child_inherits_its_parents_settings_and_overrides_its_own() -> None:
    high = _evaluate(TREE, output("news2", "high", 8)).decision
    medium = _evaluate(TREE, output("news2", "medium")).decision

    assert high.route == "news2-high"
    assert high.card is not None and high.card.indicator is Indicator.CRITICAL
    # No child matched a medium score: the parent takes it, with its own indicator rather than the defaults'.
    assert medium.card is not None and medium.card.indicator is Indicator.WARNING


def test_the_trace_names_every_route_tried_and_the_matcher_that_failed() -> None:
    trace = _evaluate(TREE, output("news2", "medium")).trace.to_dict()

    tried = {t["route"]: t for t in trace["routes_tried"]}
    assert tried["news2"]["matched"] is True
    assert tried["news2-icu"]["failed"] == ["unit_type 'ward' is not in ['icu']"]
    assert tried["news2-high"]["failed"] == ["band 'medium' is not in ['high']"]
    assert trace["route_chosen"] == "news2"


def test_a_regex_matcher_matches_the_whole_label() -> None:
    assert _evaluate(TREE, output("qsofa", "positive")).decision.route == "anything-else"
    assert _evaluate(TREE, output("sirs", "positive")).decision.route == "root"


def test_an_output_no_route_takes_gets_the_defaults() -> None:
    decision = _evaluate(TREE, output("sirs", "positive")).decision

    assert decision.action is Action.SURFACE
    assert decision.card is not None and decision.card.indicator is Indicator.INFO


CONTINUED = """
id: continued
version: "1"
routes:
  - name: quiet-on-icu
    match: {unit_type: icu}
    action: suppress
    continue: true
  - name: news2-high
    match: {scorer: news2, band: high}
    action: escalate
    escalation: [{role: nurse, channel: inbox}]
  - name: never-reached
    match: {scorer: news2}
"""


def test_continue_lets_later_routes_match_and_the_more_urgent_action_wins() -> None:
    evaluation = _evaluate(CONTINUED, output("news2", "high", 8), context(unit_type="icu"))

    assert evaluation.trace.matched == ("quiet-on-icu", "news2-high")
    assert evaluation.decision.action is Action.ESCALATE
    assert evaluation.decision.route == "news2-high"
    assert "never-reached" not in [a.route for a in evaluation.trace.attempts]


def test_a_continued_route_alone_still_decides_when_nothing_else_matches() -> None:
    decision = _evaluate(CONTINUED, output("news2", "medium"), context(unit_type="icu")).decision

    # news2-high does not match; never-reached does (continue keeps looking), and surfacing outranks suppressing.
    assert decision.route == "never-reached"
    assert decision.action is Action.SURFACE


PREDICATES = """
id: predicates
version: "1"
routes:
  - name: elderly
    match: {age_min: 80}
    action: suppress
    reason: below-threshold
  - name: worsening
    match: {band_trend: worsening}
    indicator: critical
"""


def test_a_route_for_an_age_never_catches_a_patient_of_unknown_age() -> None:
    old = _evaluate(PREDICATES, output(), context(age_years=85)).decision
    unknown = _evaluate(PREDICATES, output(), context()).decision

    assert old.route == "elderly" and old.reasons == (Reason.BELOW_THRESHOLD,)
    assert unknown.route != "elderly"


def test_band_trend_compares_with_the_last_band_seen_for_the_patient() -> None:
    routed = policy(PREDICATES)
    state = InMemoryPolicyState()
    state.apply(routed.evaluate(output("news2", "low", 2), context(), state, START).events)

    decision = routed.evaluate(output("news2", "medium"), context(), state, START).decision

    assert decision.route == "worsening"


def test_every_decision_records_its_route_reasons_policy_version_and_inputs_hash() -> None:
    routed = policy(TREE)
    out = output("news2", "high", 8)

    decision = routed.evaluate(out, context(), InMemoryPolicyState(), START).decision

    assert decision.route == "news2-high"
    assert decision.reasons == (Reason.ROUTE_MATCHED,)
    assert decision.policy_id == "tree"
    assert decision.policy_version == f"1+{routed.content_hash[:12]}"
    assert decision.inputs_hash == out.input_hash
    assert decision.decided_at == START


def test_the_trace_says_which_mechanism_changed_the_outcome() -> None:
    routed = policy('id: d\nversion: "1"\ndefaults: {dedup: 1h}\n')
    state = InMemoryPolicyState()
    state.apply(routed.evaluate(output(), context(), state, START).events)

    trace = routed.evaluate(output(), context(), state, START).trace.to_dict()

    changed = [m for m in trace["mechanisms"] if m["changed"]]
    assert [m["mechanism"] for m in changed] == ["dedup"]
    assert "quiet until" in changed[0]["detail"]


def test_the_policy_port_decide_works_from_a_clinical_context() -> None:
    from clinical.model import ClinicalContext

    decision = policy(TREE).decide(output("news2", "high", 8), ClinicalContext(patient=None), START)

    assert decision.action is Action.SURFACE
    assert decision.card is not None and decision.card.indicator is Indicator.CRITICAL
