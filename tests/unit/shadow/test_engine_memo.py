"""What replay's speed rests on: the engine's remembered routing and clock answers equal a fresh computation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

from policy.context import PatientFacts, PolicyContext, UnitFacts
from policy.document import Trend, load_policy
from policy.engine import RoutedPolicy
from policy.matching import Facts
from policy.routing import RouteMemo, route
from policy.state import InMemoryPolicyState
from scoring.port import RiskOutput

POLICY = """
id: memo
version: "1"
timezone: Europe/London
routes:
  - name: elderly-worse
    match: {age_min: 65, band_trend: [worsening]}
    action: escalate
  - name: high
    match: {band: high, window: night}
    action: delay
    delay: {for: 1h}
  - name: low
    match: {band: low}
    action: suppress
time_windows:
  night: {start: "22:00", end: "06:00", effect: delay}
"""


def _facts(band: str, age: float | None, trend: Trend, windows: frozenset[str]) -> Facts:
    labels = {"scorer": "s", "band": band, "hook": "patient-view", "unit_type": "icu", "role": "nurse"}
    return Facts(labels=labels, age_years=age, band_trend=trend, windows=windows)


def test_a_remembered_route_is_the_tree_walk_for_every_combination_of_the_facts_it_reads() -> None:
    policy = RoutedPolicy(load_policy(POLICY))
    memo = RouteMemo(policy.root, lambda matched, attempts: (tuple(matched), tuple(attempts)))
    combos = list(product(("low", "high"), (None, 40, 65, 65.0, 80), list(Trend), (frozenset(), frozenset({"night"}))))

    for _ in range(2):  # the second round is answered from memory
        for band, age, trend, windows in combos:
            facts = _facts(band, age, trend, windows)
            matched, attempts = route(policy.root, facts)
            assert memo(facts) == (tuple(matched), tuple(attempts)), (band, age, trend, windows)


def test_decisions_at_remembered_instants_equal_a_fresh_engines_across_a_day() -> None:
    document = load_policy(POLICY)
    warm = RoutedPolicy(document)
    context = PolicyContext(hook="patient-view", role="nurse", unit=UnitFacts("u1", "icu"), patient=PatientFacts("p"))
    start = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    instants = [start + timedelta(minutes=50 * i) for i in range(40)]

    held = 0
    for now in [*instants, *instants]:
        output = RiskOutput(scorer_id="s", scorer_version="1", score=0.9, band="high", as_of=now, input_hash="h")
        remembered = warm.evaluate(output, context, InMemoryPolicyState(), now)
        fresh = RoutedPolicy(document).evaluate(output, context, InMemoryPolicyState(), now)
        assert remembered == fresh
        held += remembered.decision.delay_until is not None
    # The night window was open at some of the instants and closed at others: both answers were compared.
    assert 0 < held < 2 * len(instants)
