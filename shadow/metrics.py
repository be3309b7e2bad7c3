"""Replay metrics: row-level AUROC, AUPRC and utility; event-based alert metrics on the stream after policy.

Alert metrics follow the event-based definitions of Hyland et al. (docs/clinical-reference.md) with the policy's own
silencing in place of a fixed one. Onset t_sepsis = first SepsisLabel row + 6. An alert is true when onset follows
within 8 h (0 <= t_sepsis - t <= 8); alerts after onset (the patient is in the event) count toward the alert rate
but not toward precision. An event is caught when an alert fell in the 8 h up to its onset; lead time is onset
minus the earliest such alert. Workup-to-detection ratio = stays alerted / events caught.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.utility import DT_OPTIMAL, row_payoffs, row_utilities

EVENT_HORIZON_HOURS = 8
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StayStats:
    """One entry per stay: everything the alert metrics are ratios or quantiles of."""

    hours: FloatArray
    septic: FloatArray
    alerts: FloatArray
    counted: FloatArray  # alerts at or before onset (all alerts of a stay without sepsis)
    true_alerts: FloatArray
    caught: FloatArray
    alerted: FloatArray
    lead: FloatArray  # hours, NaN unless caught
    first_alert: FloatArray  # hours since the stay's first row, NaN if never alerted


def stay_of(starts: npt.NDArray[np.int64], rows: int) -> npt.NDArray[np.int64]:
    return np.repeat(np.arange(len(starts)), np.diff(np.append(starts, rows)))


def onsets(labels: npt.ArrayLike, starts: npt.NDArray[np.int64]) -> FloatArray:
    """t_sepsis per stay (row index within the stay), NaN for stays that never turn septic."""
    y = np.asarray(labels)
    stay = stay_of(starts, len(y))
    t = np.arange(len(y)) - starts[stay]
    first = np.full(len(starts), np.inf)
    np.minimum.at(first, stay[y == 1], t[y == 1])
    return np.where(np.isfinite(first), first - DT_OPTIMAL, np.nan)


def stay_stats(labels: npt.ArrayLike, alerts: npt.ArrayLike, starts: npt.NDArray[np.int64]) -> StayStats:
    """Per-stay alert counts, events caught, lead times and first-alert times of one alert stream."""
    a = np.asarray(alerts, dtype=bool)
    n, s = len(a), len(starts)
    stay = stay_of(starts, n)
    t = (np.arange(n) - starts[stay]).astype(np.float64)
    onset = onsets(labels, starts)
    row_onset = onset[stay]
    septic_row = ~np.isnan(row_onset)
    with np.errstate(invalid="ignore"):
        before = row_onset - t
        counted = a & (~septic_row | (before >= 0))
        true = a & septic_row & (before >= 0) & (before <= EVENT_HORIZON_HOURS)

    def per_stay(mask: npt.NDArray[np.bool_]) -> FloatArray:
        return np.bincount(stay[mask], minlength=s).astype(np.float64)

    earliest_true = np.full(s, np.inf)
    np.minimum.at(earliest_true, stay[true], t[true])
    first = np.full(s, np.inf)
    np.minimum.at(first, stay[a], t[a])
    caught = np.isfinite(earliest_true)
    return StayStats(
        hours=np.diff(np.append(starts, n)).astype(np.float64),
        septic=(~np.isnan(onset)).astype(np.float64),
        alerts=per_stay(a),
        counted=per_stay(counted),
        true_alerts=per_stay(true),
        caught=caught.astype(np.float64),
        alerted=np.isfinite(first).astype(np.float64),
        lead=np.where(caught, onset - np.where(caught, earliest_true, 0), np.nan),
        first_alert=np.where(np.isfinite(first), first, np.nan),
    )


ALERT_METRICS = (
    "alerts_per_patient_day",
    "share_of_stays_alerted",
    "alert_precision",
    "event_recall",
    "workup_to_detection",
    "lead_time_median_h",
    "lead_time_q25_h",
    "lead_time_q75_h",
    "time_to_first_alert_median_h",
)


def alert_metrics(stats: StayStats, weights: FloatArray) -> dict[str, float]:
    """The alert metrics of stays counted `weights` times (all ones for the sample itself, a bootstrap draw else)."""
    w = weights

    def ratio(top: FloatArray, bottom: FloatArray, scale: float = 1.0) -> float:
        denominator = float(w @ bottom)
        return float(w @ top) * scale / denominator if denominator > 0 else float("nan")

    lead = _weighted_quantiles(stats.lead, w, (0.5, 0.25, 0.75))
    return {
        "alerts_per_patient_day": ratio(stats.alerts, stats.hours, 24.0),
        "share_of_stays_alerted": ratio(stats.alerted, np.ones_like(w)),
        "alert_precision": ratio(stats.true_alerts, stats.counted),
        "event_recall": ratio(stats.caught, stats.septic),
        "workup_to_detection": ratio(stats.alerted, stats.caught),
        "lead_time_median_h": lead[0],
        "lead_time_q25_h": lead[1],
        "lead_time_q75_h": lead[2],
        "time_to_first_alert_median_h": _weighted_quantiles(stats.first_alert, w, (0.5,))[0],
    }


def _weighted_quantiles(values: FloatArray, weights: FloatArray, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of the non-NaN values, each repeated `weights` times (lower value at ties, as `inverted_cdf`)."""
    keep = ~np.isnan(values) & (weights > 0)
    if not keep.any():
        return [float("nan")] * len(qs)
    order = np.argsort(values[keep], kind="stable")
    v, cum = values[keep][order], np.cumsum(weights[keep][order])
    return [float(v[min(np.searchsorted(cum, q * cum[-1]), len(v) - 1)]) for q in qs]


RANKING_METRICS = ("auroc", "auprc")


def ranking_shared(metric: str, arm: int, overall: bool) -> bool:
    """True when an arm's bootstrap draws of this metric are the live arm's (arm 0) own draws.

    Every replay arm ranks rows by the one model's scores (arms differ in threshold and policy, which AUROC and
    AUPRC do not see), so on the same draws of stays they are equal and the paired difference is exactly 0. An arm
    scored by another model version would need draws of its own. Ranking draws are computed overall only.
    """
    return overall and arm > 0 and metric in RANKING_METRICS


@dataclass(frozen=True, slots=True)
class RowStats:
    """What row-level metrics need: per-stay utility sums and the score groups for weighted AUROC / AUPRC."""

    utility: FloatArray
    best: FloatArray
    inaction: FloatArray
    group: npt.NDArray[np.int64]  # each row's distinct-score rank, ascending
    groups: int
    label: npt.NDArray[np.bool_]
    stay: npt.NDArray[np.int64]


def row_stats(
    labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float, starts: npt.NDArray[np.int64]
) -> RowStats:
    y = np.asarray(labels).astype(np.int8)
    x = np.asarray(scores, dtype=np.float64)
    stay = stay_of(starts, len(y))
    onset = onsets(y, starts)[stay]
    t = np.arange(len(y)) - starts[stay]
    last = (np.diff(np.append(starts, len(y))) - 1)[stay]
    with np.errstate(invalid="ignore"):
        best = (t >= np.maximum(0, onset - 12)) & (t <= np.minimum(onset + 3, last))
    if_positive, if_negative = row_payoffs(y, starts)

    def per_stay(values: FloatArray) -> FloatArray:
        return np.asarray(np.bincount(stay, weights=values, minlength=len(starts)), dtype=np.float64)

    _, group = np.unique(x, return_inverse=True)
    return RowStats(
        utility=per_stay(row_utilities(y, x >= threshold, starts)),
        best=per_stay(np.where(best, if_positive, if_negative)),
        inaction=per_stay(if_negative),
        group=group.astype(np.int64),
        groups=int(group.max()) + 1 if len(group) else 0,
        label=y == 1,
        stay=stay,
    )


def row_metrics(stats: RowStats, weights: FloatArray, *, ranking: bool = True) -> dict[str, float]:
    """Normalised utility, and (if `ranking`) AUROC and AUPRC with every row weighted by its stay's weight."""
    u, b, i = (float(weights @ v) for v in (stats.utility, stats.best, stats.inaction))
    out = {"normalised_utility": (u - i) / (b - i) if b != i else float("nan")}
    if ranking:
        w = weights[stats.stay]
        positives = np.bincount(stats.group, weights=w * stats.label, minlength=stats.groups)
        negatives = np.bincount(stats.group, weights=w * ~stats.label, minlength=stats.groups)
        p, q = positives.sum(), negatives.sum()
        # Ties count half, as the Mann-Whitney form of the AUROC does.
        below = np.cumsum(negatives) - negatives
        out["auroc"] = float((positives * (below + negatives / 2)).sum() / (p * q)) if p and q else float("nan")
        # Average precision: thresholds from the highest score down, precision weighted by the recall gained.
        tp, fp = np.cumsum(positives[::-1]), np.cumsum(negatives[::-1])
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        out["auprc"] = float((positives[::-1] * precision).sum() / p) if p else float("nan")
    return out
