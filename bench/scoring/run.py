"""Scoring benchmark: one-row latency of ONNX vs scikit-learn on the same model, batch rows/s, live scorer latency.

Run from the repository root: `uv run python bench/scoring/run.py [--stays N]`. Reads training set A from
../shared/data when it is there (real rows make trees branch realistically), else synthetic stays. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from clinical.physionet import load_table  # noqa: E402 -- after the path set-up above
from scoring.features import extract, grid_from_table  # noqa: E402
from scoring.model.registry import BUNDLED_MODELS, ModelRegistry  # noqa: E402
from scoring.model.scorer import OnnxModelScorer  # noqa: E402
from scoring.model.training import export_onnx, node_visits_per_row, onnx_probabilities  # noqa: E402
from tests.unit.scoring.model.stays import as_of_hour, context_of_table, write_psv_stays  # noqa: E402

SET_A = ROOT.parent / "shared" / "data" / "physionet2019" / "training_setA.tar.gz"


def per_call(fn: Callable[[], object], *, repeat: int, rounds: int = 5) -> float:
    """Median seconds per call over `rounds` rounds of `repeat` calls."""
    fn()
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        timings.append((time.perf_counter() - start) / repeat)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-rows", type=int, default=200_000)
    args = parser.parse_args()

    model = ModelRegistry(BUNDLED_MODELS).load("sepsis-hgb")
    card = model.card
    hp = card.hyperparameters
    depth = "" if hp.get("max_depth") is None else f", depth <= {hp['max_depth']}"
    print(
        f"model {card.model_id} {card.version}: {len(card.features)} features, "
        f"{hp['iterations']} trees of <= {hp['max_leaf_nodes']} leaves{depth}"
    )

    if SET_A.is_file():
        table = load_table(SET_A)
        source = "training set A"
    else:
        folder = Path(tempfile.mkdtemp())
        write_psv_stays(folder, stays=2000, seed=1)
        table = load_table(folder)
        source = "synthetic stays"
    grid = grid_from_table(table)
    features = extract(grid)
    rows = model.select(features)
    labels = table["sepsis_label"].to_numpy()
    print(f"rows: {len(rows):,} from {source}")

    # The same model in both runtimes: refit with the card's settings and tree count, then export it.
    rng = np.random.default_rng(0)
    fit_rows = rng.choice(len(rows), size=min(150_000, len(rows)), replace=False)
    reference = HistGradientBoostingClassifier(
        learning_rate=hp["learning_rate"],
        max_leaf_nodes=hp["max_leaf_nodes"],
        max_depth=hp.get("max_depth"),
        min_samples_leaf=hp["min_samples_leaf"],
        l2_regularization=hp["l2_regularization"],
        max_iter=hp["iterations"],
        early_stopping=False,
        random_state=0,
    ).fit(rows[fit_rows], labels[fit_rows])
    onnx_bytes = export_onnx(reference, rows.shape[1])
    import onnxruntime as ort

    from scoring.model.registry import session_options

    session = ort.InferenceSession(onnx_bytes, session_options(), providers=["CPUExecutionProvider"])
    one = rows[:1]
    sk = per_call(lambda: reference.predict_proba(one), repeat=50)
    ox = per_call(lambda: session.run(["probabilities"], {"X": one}), repeat=2000)
    print(
        f"one row, same model: scikit-learn predict_proba {sk * 1e6:,.1f} us, onnxruntime {ox * 1e6:,.1f} us "
        f"-> ONNX {sk / ox:,.0f}x faster (target >= 20x)"
    )
    worst = float(
        np.max(np.abs(onnx_probabilities(onnx_bytes, rows[:20_000]) - reference.predict_proba(rows[:20_000])[:, 1]))
    )
    print(f"parity on 20,000 rows: max |onnx - sklearn| = {worst:.2e}")

    batch = np.ascontiguousarray(rows[rng.choice(len(rows), size=min(args.batch_rows, len(rows)), replace=False)])
    if model.splits is not None:
        # What the batch rate is mostly paid for: the split tests each row meets over all trees.
        visits = model.splits.visits(batch).mean()
        print(f"node visits a row, bundled model: {visits:.1f} (training budget {hp.get('node_visit_budget')})")
    # The baseline, in the same run: the shape of model 1.0.0 (58 trees of <= 31 leaves at any depth, learning rate
    # 0.1) fitted on the same rows, so the ratio says what the lean shape buys on this machine today.
    baseline = HistGradientBoostingClassifier(
        max_leaf_nodes=31,
        min_samples_leaf=100,
        l2_regularization=1.0,
        max_iter=58,
        early_stopping=False,
        random_state=0,
    ).fit(rows[fit_rows], labels[fit_rows])
    baseline_bytes = export_onnx(baseline, rows.shape[1])
    baseline_session = ort.InferenceSession(baseline_bytes, session_options(), providers=["CPUExecutionProvider"])
    print(f"node visits a row, baseline 1.0.0 shape: {node_visits_per_row(baseline_bytes, batch):.1f}")
    rates = {}
    for name, sess in (
        ("baseline 1.0.0 shape", baseline_session),
        ("bundled model", model.session),
        ("refitted model", session),
    ):
        seconds = per_call(lambda s=sess: s.run(["probabilities"], {"X": batch}), repeat=1, rounds=5)
        rates[name] = len(batch) / seconds
        print(
            f"batch, {name}, onnxruntime on 1 thread: {rates[name]:,.0f} rows/s "
            f"({len(batch):,} rows per run call; target >= 1,000,000 rows/s -> {rates[name] / 1e6:.2f}x; "
            f"{rates[name] / rates['baseline 1.0.0 shape']:.2f}x the baseline)"
        )
    bundled_one = per_call(lambda: model.predict(one), repeat=2000)
    print(f"one row, bundled model, onnxruntime: {bundled_one * 1e6:,.1f} us")

    # The live path end to end: context -> hourly grid -> features -> model -> explanation.
    stay = table.filter(table["stay_id"] == grid.stay_ids[0])
    context = context_of_table(stay, rng)
    scorer = OnnxModelScorer(model)
    as_of = as_of_hour(int(stay["hour"][-1]))
    live = per_call(lambda: scorer.score(context, as_of), repeat=200)
    print(
        f"live OnnxModelScorer.score ({stay.height} h, {len(context.observations)} observations, "
        f"with occlusion explanation): {live * 1e3:,.2f} ms (target <= 0.4 ms)"
    )


if __name__ == "__main__":
    main()
