"""Threshold sweep: one policy replayed at a grid of model thresholds on rows scored once, and the threshold that
keeps alerts per patient-day within a stated budget with the highest event recall.

Each threshold is one arm of the ordinary policy pass (`passes.run_policies`), so the sweep sees the policy's own
silencing and lockouts exactly as a replay does; only the scoring is shared.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt
import polars as pl

from policy.document import PolicyDocument
from scoring.model.card import ModelCard
from shadow.candidates import Candidate, band_edges
from shadow.inputs import ReplayInput
from shadow.metrics import alert_metrics, row_metrics, row_stats, stay_stats
from shadow.passes import ALERTING, ScorerInfo, run_policies

# Where a default grid's thresholds sit: quantiles of the row scores, from the median up to the top 0.5%.
GRID_QUANTILES = (0.5, 0.995)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The threshold chosen for `budget` (None when no grid threshold meets it) and how it was chosen."""

    budget: float
    threshold: float | None
    reason: str


def scorer_info(card: ModelCard) -> ScorerInfo:
    """The scorer as the replay's policy pass sees it: the card's bands with the card's own threshold."""
    return ScorerInfo(card.model_id, card.version, band_edges(card, card.threshold))


def default_grid(scores: npt.ArrayLike, points: int = 12, keep: Sequence[float] = ()) -> tuple[float, ...]:
    """`points` thresholds at evenly spaced quantiles of the row scores, plus the `keep` ones (e.g. the live one)."""
    x = np.asarray(scores, dtype=np.float64)
    x = x[np.isfinite(x)]
    grid = np.quantile(x, np.linspace(*GRID_QUANTILES, points)) if len(x) else np.zeros(0)
    rounded = {float(f"{t:.3g}") for t in grid} | {float(t) for t in keep}
    return tuple(sorted(rounded))


def parse_grid(text: str) -> tuple[float, ...]:
    """`0.02,0.05,0.1` (a list) or `0.02:0.2:0.02` (start:stop:step, stop included) as thresholds."""
    if ":" in text:
        start, stop, step = (float(p) for p in text.split(":"))
        if step <= 0 or stop < start:
            raise ValueError(f"grid {text!r}: want start:stop:step with start <= stop and step > 0")
        count = int(np.floor((stop - start) / step + 1e-9)) + 1
        return tuple(round(start + i * step, 10) for i in range(count))
    return tuple(sorted({float(p) for p in text.split(",") if p.strip()}))


def sweep(
    data: ReplayInput,
    scorer: ScorerInfo,
    document: PolicyDocument,
    thresholds: Sequence[float],
    *,
    policy: str,
    workers: int | None = None,
    bootstrap: int = 200,
    seed: int = 2019,
    progress: bool = False,
) -> pl.DataFrame:
    """Alert metrics (and utility) of `document` at each threshold; 95% intervals for alerts/day and recall."""
    arms = [Candidate(f"{policy}@{t:g}", document, float(t)) for t in thresholds]
    actions = run_policies(data, scorer, arms, workers=workers, progress=progress)
    stays = len(data.starts)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(stays, np.full(stays, 1.0 / stays), size=bootstrap).astype(np.float64)
    ones = np.ones(stays)
    rows: list[dict[str, object]] = []
    for arm, decided in zip(arms, actions, strict=True):
        stats = stay_stats(data.labels, np.isin(decided, ALERTING), data.starts)
        point = alert_metrics(stats, ones)
        utility = row_metrics(row_stats(data.labels, data.scores, arm.threshold, data.starts), ones, ranking=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_day = (draws @ stats.alerts) * 24.0 / (draws @ stats.hours)
            recall = (draws @ stats.caught) / (draws @ stats.septic)
        rows.append(
            {
                "policy": policy,
                "threshold": arm.threshold,
                **point,
                **utility,
                "alerts_per_patient_day_lo": _percentile(per_day, 2.5),
                "alerts_per_patient_day_hi": _percentile(per_day, 97.5),
                "event_recall_lo": _percentile(recall, 2.5),
                "event_recall_hi": _percentile(recall, 97.5),
            }
        )
    return pl.DataFrame(rows).sort("threshold")


def _percentile(sample: npt.NDArray[np.float64], q: float) -> float:
    finite = sample[np.isfinite(sample)]
    return float(np.percentile(finite, q)) if len(finite) else float("nan")


def recommend(frame: pl.DataFrame, budget: float) -> Recommendation:
    """The threshold with the highest event recall whose alerts per patient-day stay within `budget`.

    Ties in recall go to fewer alerts per patient-day, then to the higher threshold. The choice is made on point
    estimates of the same stays it is shown on, so it is an in-sample choice.
    """
    table = frame.with_columns(pl.col("alerts_per_patient_day", "event_recall").fill_nan(None))
    within = table.filter(pl.col("alerts_per_patient_day") <= budget)
    if within.is_empty():
        fewest = table.drop_nulls("alerts_per_patient_day").sort("alerts_per_patient_day")
        least = (
            f" (fewest: {fewest['alerts_per_patient_day'][0]:.2f} at threshold {fewest['threshold'][0]:g})"
            if not fewest.is_empty()
            else ""
        )
        reason = (
            f"No threshold of the {frame.height} on the grid keeps alerts per patient-day within the budget of "
            f"{budget:g}{least}: extend the grid upwards, revisit the budget, or look at what the policy does with "
            "the bands below the threshold."
        )
        return Recommendation(budget, None, reason)
    if within["event_recall"].null_count() == within.height:
        reason = (
            f"Event recall is not defined on these stays (no outcome labels, or no septic stay), so no threshold "
            f"is recommended for the budget of {budget:g}; {within.height} of {frame.height} grid thresholds stay "
            "within it."
        )
        return Recommendation(budget, None, reason)
    best = within.sort(
        ["event_recall", "alerts_per_patient_day", "threshold"], descending=[True, False, True], nulls_last=True
    ).row(0, named=True)
    reason = (
        f"Threshold {best['threshold']:g}: the highest event recall ({best['event_recall']:.1%}) among the "
        f"{within.height} of {frame.height} grid thresholds whose alerts per patient-day stay within the budget of "
        f"{budget:g} "
        f"(this one: {best['alerts_per_patient_day']:.2f}, 95% CI {best['alerts_per_patient_day_lo']:.2f}-"
        f"{best['alerts_per_patient_day_hi']:.2f}); ties in recall go to fewer alerts, then the higher threshold."
    )
    return Recommendation(budget, float(best["threshold"]), reason)


def write_sweep(frame: pl.DataFrame, budget: float | None, out: Path) -> Path:
    """sweep.parquet in a replay folder, each row carrying the budget (NaN if none) and whether it is recommended."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = recommend(frame, budget).threshold if budget is not None else None
    table = frame.with_columns(
        pl.lit(float("nan") if budget is None else budget).alias("budget"),
        (pl.col("threshold") == chosen if chosen is not None else pl.lit(False)).alias("recommended"),
    )
    path = out / "sweep.parquet"
    table.write_parquet(path)
    return path


def first_stays(path: Path, count: int) -> list[str]:
    """The first `count` stay ids, in the sorted order a replay uses, of a PhysioNet directory, .zip or .tar.gz."""
    if path.is_dir():
        names = [p.stem for p in path.rglob("*.psv")]
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [PurePosixPath(n).stem for n in archive.namelist() if n.endswith(".psv")]
    else:
        with tarfile.open(path) as archive:
            names = [PurePosixPath(m.name).stem for m in archive if m.isfile() and m.name.endswith(".psv")]
    return sorted(names)[:count]
