"""PhysioNet 2019 normalised utility (Reyna et al., Crit Care Med 2020), vectorised over rows; hourly AUROC/AUPRC.

Stays are given as row offsets (`starts`) into flat label and prediction arrays; rows of a stay are its hours in file
order, t = 0, 1, ... . Constants and piecewise rules follow docs/clinical-reference.md exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score

DT_EARLY = -12
DT_OPTIMAL = -6
DT_LATE = 3
MAX_U_TP = 1.0
MIN_U_FN = -2.0
U_FP = -0.05
U_TN = 0.0

ArrayLike = npt.ArrayLike


@dataclass(frozen=True, slots=True)
class UtilityReport:
    """Raw and normalised utility of one set of predictions."""

    utility: float
    best: float
    inaction: float

    @property
    def normalised(self) -> float:
        return (self.utility - self.inaction) / (self.best - self.inaction)


def _stays(labels: npt.NDArray[np.int8], starts: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float64], ...]:
    """Per row: hour index t within its stay, t_sepsis of its stay (NaN if non-septic) and the stay's last t."""
    n = len(labels)
    if len(starts) == 0 or starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= n:
        raise ValueError("starts must begin at 0 and increase strictly within the rows")
    counts = np.diff(np.append(starts, n))
    stay = np.repeat(np.arange(len(starts)), counts)
    t = (np.arange(n) - starts[stay]).astype(np.float64)
    # First positive row of each stay: minimum t among positive rows (n where none).
    first = np.full(len(starts), np.inf)
    positive = labels == 1
    np.minimum.at(first, stay[positive], t[positive])
    t_sepsis = np.where(np.isfinite(first), first - DT_OPTIMAL, np.nan)[stay]
    last_t = (counts - 1).astype(np.float64)[stay]
    return t, t_sepsis, last_t


def row_payoffs(labels: ArrayLike, starts: ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per row, the utility of predicting positive and the utility of predicting negative."""
    y = np.asarray(labels).astype(np.int8)
    t, t_sepsis, _ = _stays(y, np.asarray(starts, dtype=np.int64))
    septic = ~np.isnan(t_sepsis)
    d = np.where(septic, t - np.nan_to_num(t_sepsis), 0.0)
    early = d <= DT_OPTIMAL
    window = (d > DT_OPTIMAL) & (d <= DT_LATE)
    # Positive rows of a septic stay: rising from 0 at dt_early to max at dt_optimal (floored at u_fp before
    # that), then falling to 0 at dt_late, then nothing. Negative rows cost from dt_optimal to dt_late.
    tp = np.where(
        early,
        np.maximum(MAX_U_TP * (d - DT_EARLY) / (DT_OPTIMAL - DT_EARLY), U_FP),
        np.where(window, MAX_U_TP * (1 - (d - DT_OPTIMAL) / (DT_LATE - DT_OPTIMAL)), 0.0),
    )
    fn = np.where(window, MIN_U_FN * (d - DT_OPTIMAL) / (DT_LATE - DT_OPTIMAL), 0.0)
    return np.where(septic, tp, U_FP), np.where(septic, fn, U_TN)


def row_utilities(labels: ArrayLike, predictions: ArrayLike, starts: ArrayLike) -> npt.NDArray[np.float64]:
    """Utility of each row's binary prediction."""
    p = np.asarray(predictions).astype(bool)
    if np.shape(labels) != p.shape:
        raise ValueError("one prediction per label row is required")
    if_positive, if_negative = row_payoffs(labels, starts)
    return np.where(p, if_positive, if_negative)


def utility_report(labels: ArrayLike, predictions: ArrayLike, starts: ArrayLike) -> UtilityReport:
    """Total utility of the predictions, of the best predictions and of predicting nothing."""
    y = np.asarray(labels).astype(np.int8)
    s = np.asarray(starts, dtype=np.int64)
    t, t_sepsis, last_t = _stays(y, s)
    with np.errstate(invalid="ignore"):
        best = (t >= np.maximum(0, t_sepsis + DT_EARLY)) & (t <= np.minimum(t_sepsis + DT_LATE, last_t))
    return UtilityReport(
        utility=float(row_utilities(y, predictions, s).sum()),
        best=float(row_utilities(y, best, s).sum()),
        inaction=float(row_utilities(y, np.zeros(len(y), dtype=bool), s).sum()),
    )


def normalised_utility(labels: ArrayLike, predictions: ArrayLike, starts: ArrayLike) -> float:
    """(U - U_inaction) / (U_best - U_inaction) over all rows of all stays."""
    return utility_report(labels, predictions, starts).normalised


def best_threshold(labels: ArrayLike, scores: ArrayLike, starts: ArrayLike) -> tuple[float, float]:
    """The score threshold (positive when score >= threshold) with the highest normalised utility, and that utility.

    Exact over every distinct score: rows sorted by score, the utility gained by turning each row positive is summed
    cumulatively, so all thresholds are evaluated in one pass.
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(np.int8)
    s = np.asarray(starts, dtype=np.int64)
    report = utility_report(y, np.zeros(len(y), dtype=bool), s)
    if_positive, if_negative = row_payoffs(y, s)
    order = np.argsort(-x, kind="stable")
    gained = np.cumsum((if_positive - if_negative)[order])
    # Only the last row of a run of equal scores is a reachable threshold.
    ends = np.flatnonzero(np.append(x[order][1:] != x[order][:-1], True))
    totals = report.inaction + gained[ends]
    k = int(np.argmax(totals))
    norm = (totals[k] - report.inaction) / (report.best - report.inaction)
    return float(x[order][ends[k]]), float(norm)


def hourly_auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve over all rows (scikit-learn)."""
    return float(roc_auc_score(np.asarray(labels), np.asarray(scores)))


def hourly_auprc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the precision-recall curve over all rows, as average precision (scikit-learn)."""
    return float(average_precision_score(np.asarray(labels), np.asarray(scores)))
