"""Live and replay decide the same stay identically: the live scorer and engine hour by hour versus the replay."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np

from policy.context import PolicyContext
from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from policy.state import InMemoryPolicyState
from scoring.model.registry import BUNDLED_MODELS, ModelRegistry
from scoring.model.scorer import OnnxModelScorer
from shadow.candidates import always_suppressed, band_edges
from shadow.inputs import replay_input
from shadow.passes import ACTION_CODES, ScorerInfo, decide_stay
from tests.unit.scoring.model.stays import ICU_ADMISSION, as_of_hour, context_of_table, synthetic_stay, table_of_rows


def test_live_and_replay_produce_the_same_decisions_for_the_same_stay() -> None:
    model = ModelRegistry(BUNDLED_MODELS).load("sepsis-hgb")
    policy = RoutedPolicy(bundled_policy("deterioration"))
    rng = np.random.default_rng(12)
    table = table_of_rows("p1", synthetic_stay(rng, hours=40, septic=True))
    data = replay_input(table, model, ("lactate",))
    scorer = ScorerInfo(model.card.model_id, model.card.version, band_edges(model.card, model.card.threshold))
    elide = frozenset(b for b, _ in scorer.bands if always_suppressed(policy, scorer.scorer_id, b))
    replayed = [ACTION_CODES[a] for a in decide_stay(policy, scorer, data, 0, elide)]

    context = context_of_table(table, rng)
    hospital = ICU_ADMISSION + timedelta(hours=float(table["hosp_adm_time"][0]))
    live_scorer = OnnxModelScorer(model, hospital_admission=lambda _: hospital)
    state = InMemoryPolicyState()
    live = []
    for hour in table["hour"]:
        now = as_of_hour(hour)
        # The EHR's prefetch at that moment holds only what had been charted by then.
        seen = replace(context, observations=tuple(o for o in context.observations if o.effective_utc <= now))  # type: ignore[operator]
        outputs = live_scorer.score(seen, now)
        facts = PolicyContext.from_clinical(seen, hook="patient-view", role="nurse")
        (evaluation,) = policy.evaluate_all(outputs, facts, state, now)
        state.apply(evaluation.events)
        live.append(evaluation.decision.action)
    assert replayed == live
    assert any(a.value in ("surface", "escalate") for a in live)  # the stay alerts, so the test can tell them apart
