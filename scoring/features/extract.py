"""The one feature extractor: causal features for the rows of an hourly grid, vectorised over all stays and kinds.

Row t of a stay only ever reads rows of the same stay at or before t, so scoring the last row of a live stay gives
exactly what batch replay gives for that hour. Batch asks for every row and gets `_features`, vectorised over rows;
the live hook asks for one row (`rows=`) and gets `_row_features`, the same definitions on that row's stay alone,
vectorised over kinds only. A test holds the two equal to the bit on random grids.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

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
_KINDS = _KIND_COLUMNS[0]
_LAGS = np.arange(max(ROLLING_WINDOWS), dtype=np.int64)
_SOFA_INPUTS_LIST = [_COL[kind] for kind in ("platelets", "bilirubin_total", "creatinine", "map")]
_VITALS_LIST = _VITALS.tolist()
# SOFA cut-offs per component: one point per cut crossed, crossing below the cut for platelets (see `_points`).
_COAGULATION_CUTS = (150.0, 100.0, 50.0, 20.0)
_LIVER_CUTS = (1.2, 2.0, 6.0, 12.0)
_RENAL_CUTS = (1.2, 2.0, 3.5, 5.0)
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
# The one-row path writes its whole row with one assignment: these are the matrix columns of its pieces, in the
# order `_row_features` concatenates them.
_ROW_LAYOUT = np.concatenate(
    [
        _CARRIED,
        _HOURS_SINCE,
        _COUNT,
        _DELTA,
        *(idx for w in ROLLING_WINDOWS for idx in _WINDOW_STATS[w]),
        _CHANGE,
        _SINGLE,
    ]
)


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
    if rows is not None:
        wanted: list[int] = np.asarray(rows, dtype=np.int64).tolist()
        out = np.empty((len(wanted), len(FEATURES)), dtype=np.float32)
        starts: list[int] = grid.starts.tolist()
        for i, row in enumerate(wanted):
            if not 0 <= row < n:
                raise IndexError(f"row {row} is not a row of this {n}-row grid")
            of = bisect_right(starts, row) - 1
            features = _row_features(grid, row, starts[of], of)
            # fromiter reads the floats straight in; assigning the list would first ask each item what it is.
            out[i, _ROW_LAYOUT] = np.fromiter(features, dtype=np.float64, count=len(features))
        return out
    stay = grid.stay_of_row
    start = grid.starts[stay]
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


def _row_features(grid: HourlyGrid, row: int, start: int, stay: int) -> list[float]:
    """The features of one row, in `_ROW_LAYOUT` order, to the bit what `_features` computes for it.

    A live call asks for one row, where `_features`' two hundred numpy calls on arrays of a few elements cost far
    more than their arithmetic. Here numpy only lists the stay's measurements so far, and the features are read off
    that list in plain float arithmetic, which rounds exactly as numpy's float64 does.
    """
    stay_rows = grid.values[start : row + 1].T
    m = stay_rows.shape[1]
    # Every measurement of the stay up to the row, kind by kind and, within a kind, in row order.
    measured = ~np.isnan(stay_rows)
    kind_of, row_of = (found.tolist() for found in np.nonzero(measured))
    value_of = stay_rows[measured].tolist()
    # Each kind's run of entries; bisection within a run finds its latest measurement at or before a row.
    ends = [bisect_right(kind_of, j) for j in range(len(GRID_KINDS))]
    runs = list(zip([0, *ends[:-1]], ends, strict=True))

    def carried_at(j: int, at: int) -> float:
        """The kind's carried value at stay row `at` (NaN before its first measurement)."""
        first, end = runs[j]
        i = bisect_right(row_of, at, first, end) - 1
        return value_of[i] if i >= first else math.nan

    carried: list[float] = []
    hours_since: list[float] = []
    counts: list[float] = []
    deltas: list[float] = []
    for first, end in runs:
        counts.append(end - first)
        if end == first:
            carried.append(math.nan)
            hours_since.append(math.nan)
            deltas.append(math.nan)
            continue
        carried.append(value_of[end - 1])
        hours_since.append(m - 1 - row_of[end - 1])
        deltas.append(value_of[end - 1] - value_of[end - 2] if end - first > 1 else math.nan)
    measured_now = sum(1 for first, end in runs if end > first and row_of[end - 1] == m - 1)

    windows = _row_windows(value_of, row_of, runs, m)
    if windows is None:
        windows = _row_rolling(grid.values[start : row + 1])
    # The vitals TREND_WINDOW rows back (none before the stay's first row), and the SOFA inputs SOFA_TREND_WINDOW rows
    # back (at the stay's first row when the stay is younger than that).
    trend_row = m - 1 - TREND_WINDOW
    change = [carried[j] - (carried_at(j, trend_row) if trend_row >= 0 else math.nan) for j in _VITALS_LIST]
    sofa_row = max(m - 1 - SOFA_TREND_WINDOW, 0)
    sofa_before = [carried_at(j, sofa_row) for j in _SOFA_INPUTS_LIST]
    singles = _row_singles(carried, sofa_before, measured_now, grid, row, stay)
    return [*carried, *hours_since, *counts, *deltas, *windows, *change, *singles]


def _row_windows(value_of: list[float], row_of: list[int], runs: list[tuple[int, int]], m: int) -> list[float] | None:
    """`_rolling` for the last of a stay's `m` rows, from its measurements: per window, each vital's minimum, then
    maximum, then mean.

    None when a window holds both 0.0 and -0.0 and one is its minimum or maximum: numpy picks either, by how it
    vectorises, and only numpy's own reduction (`_row_rolling`) can tell which.
    """
    stats: list[float] = []
    for w in ROLLING_WINDOWS:
        lows: list[float] = []
        highs: list[float] = []
        means: list[float] = []
        for j in _VITALS_LIST:
            first, end = runs[j]
            inside = value_of[bisect_left(row_of, m - w, first, end) : end]
            if not inside:
                lows.append(math.nan)
                highs.append(math.nan)
                means.append(math.nan)
                continue
            low, high = min(inside), max(inside)
            if (low == 0 or high == 0) and len({math.copysign(1.0, v) for v in inside if v == 0}) > 1:
                return None
            # Summed lag by lag, newest first, from add's identity 0.0, as numpy's reduction in `_rolling` adds them
            # (the unmeasured lags it adds as zeros change nothing after that start).
            total = 0.0
            for value in reversed(inside):
                total += value
            lows.append(low)
            highs.append(high)
            means.append(total / len(inside))
        stats += [*lows, *highs, *means]
    return stats


def _row_rolling(stay_rows: FloatArray) -> list[float]:
    """`_rolling` for the last of a stay's rows, with numpy's own reductions, in `_row_windows` order.

    Only the stay's own lags are gathered: those before its first row, which `_rolling` adds as NaN (ignored by
    fmin and fmax) and zeros (added after the sum's 0.0 start), change nothing.
    """
    m = stay_rows.shape[0]
    depth = min(m, max(ROLLING_WINDOWS))
    # Lag 0 first, as `_rolling` gathers them, so that the reductions meet the values in the same order.
    window = stay_rows[(m - 1) - _LAGS[:depth, None], _VITALS]
    measured = ~np.isnan(window)
    zeroed = np.where(measured, window, 0.0)
    stats: list[float] = []
    for w in ROLLING_WINDOWS:
        count = measured[:w].sum(axis=0)
        total = np.add.reduce(zeroed[:w], axis=0)
        mean = np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)
        stats += np.fmin.reduce(window[:w], axis=0).tolist() + np.fmax.reduce(window[:w], axis=0).tolist()
        stats += mean.tolist()
    return stats


def _row_singles(
    carried: list[float], sofa_before: list[float], measured_now: float, grid: HourlyGrid, row: int, stay: int
) -> list[float]:
    """The `_SINGLES` of one row from its carried values (`GRID_KINDS` order), as `_features` defines them."""
    v = dict(zip(GRID_KINDS, carried, strict=True))
    coag, liver, renal, cardio, sofa = _sofa_of(v["platelets"], v["bilirubin_total"], v["creatinine"], v["map"])
    temperature, paco2, wbc = v["temperature"], v["paco2"], v["wbc"]
    return [
        _quotient(v["heart_rate"], v["sbp"]),
        v["sbp"] - v["dbp"],
        _quotient(v["bun"], v["creatinine"]),
        _quotient(v["spo2"], v["fio2"] / 100.0),
        coag,
        liver,
        renal,
        cardio,
        sofa,
        sofa - _sofa_of(*sofa_before)[-1],
        float(v["resp_rate"] >= 22) + (v["sbp"] <= 100),
        float(temperature > 38 or temperature < 36)
        + (v["heart_rate"] > 90)
        + (v["resp_rate"] > 20 or paco2 < 32)
        + (wbc > 12 or wbc < 4),
        measured_now,
        float(grid.age[stay]),
        float(grid.female[stay]),
        float(grid.hosp_adm_hours[stay]),
        int(grid.hour[row]),
    ]


def _quotient(numerator: float, denominator: float) -> float:
    """`_ratio` of two floats."""
    return numerator / denominator if denominator > 0 else math.nan


def _sofa_of(platelets: float, bilirubin: float, creatinine: float, map_: float) -> tuple[float, ...]:
    """`_sofa` of one row's carried values: the components, then their sum (a missing component counts 0)."""
    components = (
        _point_count(platelets, _COAGULATION_CUTS, descending=True),
        _point_count(bilirubin, _LIVER_CUTS, descending=False),
        _point_count(creatinine, _RENAL_CUTS, descending=False),
        math.nan if math.isnan(map_) else float(map_ < 70),
    )
    return (*components, float(sum(p for p in components if not math.isnan(p))))


def _point_count(value: float, cuts: tuple[float, ...], *, descending: bool) -> float:
    """`_points` of one value."""
    if math.isnan(value):
        return math.nan
    at_or_below = bisect_right(sorted(cuts), value)
    return float(len(cuts) - at_or_below if descending else at_or_below)


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    out = np.full_like(numerator, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _sofa(locf: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The SOFA components of carried values and their sum (a missing component counts 0)."""
    coag = _points(locf[:, _COL["platelets"]], _COAGULATION_CUTS, descending=True)
    liver = _points(locf[:, _COL["bilirubin_total"]], _LIVER_CUTS, descending=False)
    renal = _points(locf[:, _COL["creatinine"]], _RENAL_CUTS, descending=False)
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
