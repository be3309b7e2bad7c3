"""The one feature extractor: causal features for the rows of an hourly grid, vectorised over all stays and kinds.

Row t of a stay only ever reads rows of the same stay at or before t, so scoring the last row of a live stay gives
exactly what batch replay gives for that hour. The live hook asks for that one row (`rows=`) and batch asks for all
of them; both run the same code below, which computes each feature for the requested rows only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.features.catalogue import (
    FEATURE_INDEX,
    FEATURES,
    ROLLING_WINDOWS,
    SOFA_TREND_WINDOW,
    TREND_WINDOW,
    VITAL_KINDS,
)
from scoring.features.grid import GRID_KINDS, FloatArray, HourlyGrid, IntArray

FeatureMatrix = npt.NDArray[np.float32]

_COL = {kind: j for j, kind in enumerate(GRID_KINDS)}
_VITALS = np.array([_COL[kind] for kind in VITAL_KINDS], dtype=np.int64)
_KIND_COLUMNS = np.arange(len(GRID_KINDS), dtype=np.int64)[None, :]
# Batch grids are cut into blocks of whole stays of about this many rows: the rolling windows gather
# (window x rows x vitals) values, and a block keeps that, and every other temporary, to a few tens of MB.
_BLOCK_ROWS = 1 << 15


def _indices(names: list[str]) -> IntArray:
    return np.array([FEATURE_INDEX[name] for name in names], dtype=np.int64)


# Where each group of features sits in the matrix: groups are written as whole blocks, one assignment each, since
# a write per feature costs more than computing the feature itself on a one-row live call.
_CARRIED = _indices(list(GRID_KINDS))
_HOURS_SINCE = _indices([f"{k}__hours_since" for k in GRID_KINDS])
_COUNT = _indices([f"{k}__count" for k in GRID_KINDS])
_DELTA = _indices([f"{k}__delta" for k in GRID_KINDS])
_WINDOW_STATS = {
    w: tuple(_indices([f"{k}__{stat}_{w}h" for k in VITAL_KINDS]) for stat in ("min", "max", "mean"))
    for w in ROLLING_WINDOWS
}
_CHANGE = _indices([f"{k}__change_{TREND_WINDOW}h" for k in VITAL_KINDS])
_SINGLES = (
    "shock_index",
    "pulse_pressure",
    "bun_creatinine_ratio",
    "spo2_fio2_ratio",
    "sofa_coagulation",
    "sofa_liver",
    "sofa_renal",
    "sofa_cardiovascular",
    "sofa_partial",
    f"sofa_partial__change_{SOFA_TREND_WINDOW}h",
    "qsofa_partial",
    "sirs_partial",
    "kinds_measured_now",
    "age",
    "sex_female",
    "hosp_adm_hours",
    "icu_los_hours",
)
_SINGLE = _indices(list(_SINGLES))


def _check_layout() -> None:
    """Every catalogue feature is written exactly once; a catalogue entry without code is a programming error."""
    groups = [_CARRIED, _HOURS_SINCE, _COUNT, _DELTA, _CHANGE, _SINGLE]
    groups += [idx for stats in _WINDOW_STATS.values() for idx in stats]
    written = np.bincount(np.concatenate(groups), minlength=len(FEATURES))
    if np.any(written != 1):
        wrong = [FEATURES[i].name for i in np.flatnonzero(written != 1)]
        raise RuntimeError(f"extractor does not fill catalogue features exactly once: {wrong}")


_check_layout()


def extract(grid: HourlyGrid, rows: IntArray | None = None) -> FeatureMatrix:
    """Feature matrix (rows x `FEATURES`), float32 with NaN where a feature is undefined.

    `rows` (grid row indices) limits the answer to those rows, in that order; by default every row of the grid.
    A row's features are the same whichever other rows are asked for.
    """
    n = grid.values.shape[0]
    stay = grid.stay_of_row
    start = grid.starts[stay]
    if rows is not None:
        return _features(grid, 0, n, start, stay, np.asarray(rows, dtype=np.int64))
    # Column-major, as the whole-matrix consumers (training, replay) select columns from it.
    out = np.empty((n, len(FEATURES)), dtype=np.float32, order="F")
    lo = 0
    while lo < n:
        # Cut at a stay's first row, so that every block holds whole stays and reads nothing outside itself.
        cut = int(np.searchsorted(grid.starts, lo + _BLOCK_ROWS))
        hi = n if cut >= len(grid.starts) else int(grid.starts[cut])
        out[lo:hi] = _features(grid, lo, hi, start[lo:hi] - lo, stay[lo:hi], np.arange(hi - lo, dtype=np.int64))
        lo = hi
    return out


def _features(grid: HourlyGrid, lo: int, hi: int, start: IntArray, stay: IntArray, rows: IntArray) -> FeatureMatrix:
    """Features of `rows` of the grid block `lo:hi` (whole stays); `start` is each block row's stay start."""
    values = grid.values[lo:hi]
    n = values.shape[0]
    out = np.empty((len(rows), len(FEATURES)), dtype=np.float32)
    row = np.arange(n, dtype=np.int64)
    at = start[rows]

    # Per kind and row: the latest measured row so far (a running maximum), treated as "never measured" when it
    # lies before the row's own stay; then the measurement before it, read off the running index one row earlier.
    valid = ~np.isnan(values)
    last_all = np.maximum.accumulate(np.where(valid, row[:, None], -1), axis=0)
    seen_all = last_all >= start[:, None]
    locf_all = np.where(seen_all, values[np.where(seen_all, last_all, 0), _KIND_COLUMNS], np.nan)
    last = last_all[rows]
    seen = seen_all[rows]
    last_safe = np.where(seen, last, 0)
    locf = locf_all[rows]
    before_last = np.where(seen, last_safe - 1, 0)
    prev = np.where(before_last >= 0, last_all[np.maximum(before_last, 0), _KIND_COLUMNS], -1)
    has_prev = seen & (last_safe - 1 >= at[:, None]) & (prev >= at[:, None])
    cum = np.cumsum(valid, axis=0)
    out[:, _CARRIED] = locf
    out[:, _HOURS_SINCE] = np.where(seen, rows[:, None] - last, np.nan)
    out[:, _COUNT] = cum[rows] - cum[at] + valid[at]
    out[:, _DELTA] = np.where(has_prev, locf - values[np.maximum(prev, 0), _KIND_COLUMNS], np.nan)

    for w, (lo_w, hi_w, mean_w) in zip(ROLLING_WINDOWS, _rolling(values[:, _VITALS], start, rows), strict=True):
        i_min, i_max, i_mean = _WINDOW_STATS[w]
        out[:, i_min] = lo_w
        out[:, i_max] = hi_w
        out[:, i_mean] = mean_w
    trend = rows - TREND_WINDOW
    earlier = np.where((trend >= at)[:, None], locf_all[np.maximum(trend, 0)][:, _VITALS], np.nan)
    out[:, _CHANGE] = locf[:, _VITALS] - earlier

    def v(kind: str) -> FloatArray:
        return locf[:, _COL[kind]]

    # Ratios only where the divisor is positive (elsewhere NaN, and never computed, so nothing to warn about).
    shock = _ratio(v("heart_rate"), v("sbp"))
    pulse = v("sbp") - v("dbp")
    bun_creatinine = _ratio(v("bun"), v("creatinine"))
    spo2_fio2 = _ratio(v("spo2"), v("fio2") / 100.0)
    # SOFA now and 24 h earlier (or at the stay's first row when the stay is younger than that), in one pass.
    sofa_trend = rows - SOFA_TREND_WINDOW
    both = _sofa(np.vstack([locf, locf_all[np.where(sofa_trend >= at, sofa_trend, at)]]))
    m = len(rows)
    coag, liver, renal, cardio, sofa = (part[:m] for part in both)
    sofa_before = both[-1][m:]
    qsofa = (v("resp_rate") >= 22).astype(np.float64) + (v("sbp") <= 100)
    sirs = (
        ((v("temperature") > 38) | (v("temperature") < 36)).astype(np.float64)
        + (v("heart_rate") > 90)
        + ((v("resp_rate") > 20) | (v("paco2") < 32))
        + ((v("wbc") > 12) | (v("wbc") < 4))
    )
    stay_of = stay[rows]
    singles = (
        shock,
        pulse,
        bun_creatinine,
        spo2_fio2,
        coag,
        liver,
        renal,
        cardio,
        sofa,
        sofa - sofa_before,
        qsofa,
        sirs,
        valid[rows].sum(axis=1),
        grid.age[stay_of],
        grid.female[stay_of],
        grid.hosp_adm_hours[stay_of],
        grid.hour[lo:hi][rows],
    )
    out[:, _SINGLE] = np.column_stack(singles)
    return out


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    out = np.full_like(numerator, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _sofa(locf: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The SOFA components of carried values and their sum (a missing component counts 0)."""
    coag = _points(locf[:, _COL["platelets"]], (150, 100, 50, 20), descending=True)
    liver = _points(locf[:, _COL["bilirubin_total"]], (1.2, 2.0, 6.0, 12.0), descending=False)
    renal = _points(locf[:, _COL["creatinine"]], (1.2, 2.0, 3.5, 5.0), descending=False)
    m = locf[:, _COL["map"]]
    cardio = np.where(np.isnan(m), np.nan, (m < 70).astype(np.float64))
    components = np.stack([coag, liver, renal, cardio])
    return coag, liver, renal, cardio, np.nansum(components, axis=0)


def _rolling(block: FloatArray, start: IntArray, rows: IntArray) -> list[tuple[FloatArray, FloatArray, FloatArray]]:
    """Per window and column: min, max and mean of the measured values among the last `window` rows of the stay.

    The window's rows are gathered lag by lag, lag 0 first, into one (lag, row, column) array; sums run along the
    lag axis in that order, so a mean is the same to the last bit however many rows are asked for.
    """
    longest = min(max(ROLLING_WINDOWS), block.shape[0])
    source = rows[None, :] - np.arange(longest, dtype=np.int64)[:, None]
    inside = (source >= start[rows][None, :])[:, :, None]
    window = np.where(inside, block[np.maximum(source, 0)], np.nan)
    measured = ~np.isnan(window)
    zeroed = np.where(measured, window, 0.0)
    results = []
    for w in ROLLING_WINDOWS:
        k = min(w, longest)
        count = measured[:k].sum(axis=0)
        total = np.add.reduce(zeroed[:k], axis=0)
        mean = np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)
        results.append((np.fmin.reduce(window[:k], axis=0), np.fmax.reduce(window[:k], axis=0), mean))
    return results


def _points(column: FloatArray, cuts: tuple[float, ...], *, descending: bool) -> FloatArray:
    """SOFA-style points: one point per cut crossed (below the cut if `descending`), NaN where unmeasured.

    Counted by one sorted search: the cuts at or below the value (ascending), or the cuts above it (descending).
    """
    ordered = np.sort(np.array(cuts, dtype=np.float64))
    at_or_below = np.searchsorted(ordered, column, side="right")
    points = len(cuts) - at_or_below if descending else at_or_below
    return np.where(np.isnan(column), np.nan, points.astype(np.float64))
