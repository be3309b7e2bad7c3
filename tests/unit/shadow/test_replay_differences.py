"""Paired differences: threshold-only arms share the live scores, so their ranking differences are exactly 0."""

from __future__ import annotations

import numpy as np

from policy.document import bundled_policy
from shadow.candidates import Candidate
from shadow.inputs import ReplayInput
from shadow.metrics import RANKING_METRICS, ranking_shared
from shadow.passes import ScorerInfo, run_policies
from shadow.replay import ALL_UNITS, evaluate


def _stays(count: int = 12) -> ReplayInput:
    rng = np.random.default_rng(7)
    lengths = rng.integers(10, 30, size=count)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    rows = int(lengths.sum())
    labels = np.zeros(rows, dtype=np.int8)
    for s in range(0, count, 3):  # every third stay turns septic five hours before its end
        labels[starts[s] + lengths[s] - 5 : starts[s] + lengths[s]] = 1
    scores = np.clip(rng.random(rows) * 0.5 + labels * 0.4, 0, 1).astype(np.float32)
    return ReplayInput(
        stay_ids=tuple(f"s{i}" for i in range(count)),
        starts=starts,
        hours=np.concatenate([np.arange(1, n + 1) for n in lengths]),
        scores=scores,
        labels=labels,
        units=tuple("MICU" if i % 2 else "SICU" for i in range(count)),
        ages=np.full(count, 65.0),
        partial=np.zeros(rows, dtype=bool),
        last_measured={},
    )


def test_a_threshold_only_candidate_differs_from_live_by_exactly_zero_in_auroc_and_auprc_with_a_zero_interval() -> None:
    data = _stays()
    scorer = ScorerInfo("sepsis-hgb", "test", (("high", 0.5), ("low", 0.0)))
    policy = bundled_policy("surface-all")
    arms = [Candidate("live", policy, 0.5), Candidate("cand", policy, 0.7)]
    actions = run_policies(data, scorer, arms, workers=1)
    metrics, differences = evaluate(data, arms, actions, bootstrap=30)
    for name in RANKING_METRICS:
        row = differences.filter(metric=name).row(0, named=True)
        assert (row["difference"], row["lo"], row["hi"]) == (0.0, 0.0, 0.0)
        overall = metrics.filter(unit=ALL_UNITS, metric=name)
        live, cand = (overall.filter(candidate=c).row(0, named=True) for c in ("live", "cand"))
        assert np.isfinite(cand["lo"]) and (cand["lo"], cand["hi"]) == (live["lo"], live["hi"])
    utility = differences.filter(metric="normalised_utility").row(0, named=True)
    assert utility["difference"] != 0.0 and np.isfinite(utility["lo"]) and np.isfinite(utility["hi"])
    assert not differences["lo"].is_nan().any()


def test_only_candidate_arms_overall_share_the_live_ranking_draws() -> None:
    assert ranking_shared("auroc", 1, overall=True)
    assert not ranking_shared("auroc", 0, overall=True)
    assert not ranking_shared("auroc", 1, overall=False)
    assert not ranking_shared("normalised_utility", 1, overall=True)
