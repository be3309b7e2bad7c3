"""Policy benchmark: decisions per second for a generated policy of 50 routes against a 1-route policy, same run.

    python -m bench.policy.run [--decisions 20000] [--patients 200]

Each decision runs the whole engine (routing, every mechanism, the card) against an in-memory state that grows with
the decisions' events, as a long shift would. The 50-route policy is built so that most outputs walk most routes
before one matches. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from policy.context import PatientFacts, PolicyContext, UnitFacts
from policy.document import load_policy
from policy.engine import RoutedPolicy
from policy.state import InMemoryPolicyState
from scoring.port import RiskOutput

SCORERS = {"news2": ("low", "low-medium", "medium", "high"), "qsofa": ("negative", "positive")}
START = datetime(2026, 1, 14, 8, 0, tzinfo=UTC)


def generated_policy(routes: int) -> str:
    """`routes` top-level routes: the first ones match only unit types and ages no output has, then the real ones."""
    lines = [
        "id: bench",
        'version: "1"',
        "defaults: {dedup: 4h, lockout: {warning: 4h, critical: 1h}}",
        "inhibit_rules:",
        "  - {source: {comfort_care: true}, target: {scorer: [news2, qsofa]}}",
        "budget: {shifts: ['07:00', '19:00'], max_interruptive: {ward: 1000}}",
        "routes:",
    ]
    real = [
        "  - {name: news2-high, match: {scorer: news2, band: high}, action: escalate, indicator: critical,"
        " escalation: [{role: nurse, channel: inbox}, {role: charge-nurse, channel: pager, after_minutes: 15}]}",
        "  - {name: news2-low, match: {scorer: news2, band: low}, action: suppress, reason: below-threshold}",
        "  - {name: rest, match: {scorer: {regex: '.*'}}, indicator: warning}",
    ]
    for i in range(max(routes - len(real), 0)):
        lines.append(
            f"  - {{name: decoy-{i}, match: {{scorer: [news2, qsofa], unit_type: unit-{i}, age_min: {i}}},"
            f" routes: [{{match: {{band: high}}, action: escalate}}]}}"
        )
    lines += real[: max(routes, 1)] if routes >= len(real) else real[-1:]
    return "\n".join(lines) + "\n"


@dataclass
class Figures:
    routes: int
    per_second: float
    p50_us: float
    p99_us: float


def measure(routes: int, decisions: int, patients: int, seed: int) -> Figures:
    routed = RoutedPolicy(load_policy(generated_policy(routes)))
    rng = random.Random(seed)
    state = InMemoryPolicyState()
    now = START
    timings = []
    for i in range(decisions):
        scorer = rng.choice(sorted(SCORERS))
        band = rng.choice(SCORERS[scorer])
        output = RiskOutput(scorer, "1", float(rng.randint(0, 12)), band, now, f"{i:064x}")
        context = PolicyContext(
            hook="patient-view",
            role="nurse",
            unit=UnitFacts(unit_id=f"U{i % 8}", unit_type="ward"),
            patient=PatientFacts(key=f"p{rng.randrange(patients)}", comfort_care=rng.random() < 0.05),
        )
        started = time.perf_counter()
        evaluation = routed.evaluate(output, context, state, now)
        timings.append(time.perf_counter() - started)
        state.apply(evaluation.events)
        now += timedelta(seconds=5)
    total = sum(timings)
    cuts = statistics.quantiles(timings, n=100)
    return Figures(routes, decisions / total, cuts[49] * 1e6, cuts[98] * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--decisions", type=int, default=20000)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # A short warm-up so the first run does not pay for imports and first-call caches.
    measure(50, 500, args.patients, args.seed)
    results = [measure(n, args.decisions, args.patients, args.seed) for n in (1, 50)]
    print(f"policy engine, {args.decisions} decisions over {args.patients} patients (in-memory state)")
    print(f"{'routes':>7} {'decisions/s':>12} {'p50 µs':>8} {'p99 µs':>8}")
    for r in results:
        print(f"{r.routes:>7} {r.per_second:>12,.0f} {r.p50_us:>8.1f} {r.p99_us:>8.1f}")
    one, fifty = results
    print(f"50 routes run at {fifty.per_second / one.per_second:.0%} of the 1-route policy's rate")


if __name__ == "__main__":
    main()
