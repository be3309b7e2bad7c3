"""The one feature extractor: causal features for every row of an hourly grid, vectorised over all stays at once.

Row t of a stay only ever reads rows of the same stay at or before t, so scoring the last row of a live stay gives
exactly what batch replay gives for that hour.
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


def extract(grid: HourlyGrid) -> FeatureMatrix:
    """Feature matrix (rows of the grid x `FEATURES`), float32 with NaN where a feature is undefined."""
    n = grid.values.shape[0]
    # Column-major, because it is filled a column at a time (a row-major fill strides through memory per value).
    out = np.full((n, len(FEATURES)), np.nan, dtype=np.float32, order="F")
    filled = np.zeros(len(FEATURES), dtype=bool)

    def put(name: str, column: FloatArray) -> None:
        i = FEATURE_INDEX[name]
        out[:, i] = column
        filled[i] = True

    values = grid.values
    row = np.arange(n, dtype=np.int64)
    start = grid.start_of_row
    # Kind by kind over contiguous columns: the working set of one column stays in cache.
    columns = np.asfortranarray(values)
    locf = np.empty_like(columns, order="F")
    measured_now = np.zeros(n, dtype=np.int64)
    for kind, j in _COL.items():
        column = columns[:, j]
        valid = ~np.isnan(column)
        measured_now += valid
        # Index of the latest measured row so far; a running maximum over all rows, then anything before the
        # row's own stay is treated as "never measured in this stay".
        last = np.maximum.accumulate(np.where(valid, row, -1))
        seen = last >= start
        last_safe = np.where(seen, last, 0)
        locf[:, j] = np.where(seen, column[last_safe], np.nan)
        cum = np.cumsum(valid)
        # The measurement before the latest one: the running index at the row just before the latest measurement.
        before_last = np.where(seen, last_safe - 1, 0)
        prev = np.where(before_last >= 0, last[np.maximum(before_last, 0)], -1)
        has_prev = seen & (last_safe - 1 >= start) & (prev >= start)
        put(kind, locf[:, j])
        put(f"{kind}__hours_since", np.where(seen, row - last, np.nan))
        put(f"{kind}__count", cum - (cum - valid)[start])
        put(f"{kind}__delta", np.where(has_prev, locf[:, j] - column[np.maximum(prev, 0)], np.nan))

    vitals = [_COL[kind] for kind in VITAL_KINDS]
    for w, (lo, hi, mean) in zip(ROLLING_WINDOWS, _rolling(values[:, vitals], start, ROLLING_WINDOWS), strict=True):
        for i, kind in enumerate(VITAL_KINDS):
            put(f"{kind}__min_{w}h", lo[:, i])
            put(f"{kind}__max_{w}h", hi[:, i])
            put(f"{kind}__mean_{w}h", mean[:, i])
    for kind in VITAL_KINDS:
        j = _COL[kind]
        put(f"{kind}__change_{TREND_WINDOW}h", locf[:, j] - _lagged(locf[:, j], start, TREND_WINDOW, clamp=False))

    def v(kind: str) -> FloatArray:
        return locf[:, _COL[kind]]

    with np.errstate(divide="ignore", invalid="ignore"):
        put("shock_index", np.where(v("sbp") > 0, v("heart_rate") / v("sbp"), np.nan))
        put("pulse_pressure", v("sbp") - v("dbp"))
        put("bun_creatinine_ratio", np.where(v("creatinine") > 0, v("bun") / v("creatinine"), np.nan))
        put("spo2_fio2_ratio", np.where(v("fio2") > 0, v("spo2") / (v("fio2") / 100.0), np.nan))
    coag = _points(v("platelets"), (150, 100, 50, 20), descending=True)
    liver = _points(v("bilirubin_total"), (1.2, 2.0, 6.0, 12.0), descending=False)
    renal = _points(v("creatinine"), (1.2, 2.0, 3.5, 5.0), descending=False)
    cardio = np.where(np.isnan(v("map")), np.nan, (v("map") < 70).astype(np.float64))
    put("sofa_coagulation", coag)
    put("sofa_liver", liver)
    put("sofa_renal", renal)
    put("sofa_cardiovascular", cardio)
    sofa = np.nansum(np.stack([coag, liver, renal, cardio]), axis=0)
    put("sofa_partial", sofa)
    put(f"sofa_partial__change_{SOFA_TREND_WINDOW}h", sofa - _lagged(sofa, start, SOFA_TREND_WINDOW, clamp=True))
    put("qsofa_partial", (v("resp_rate") >= 22).astype(np.float64) + (v("sbp") <= 100))
    put(
        "sirs_partial",
        ((v("temperature") > 38) | (v("temperature") < 36)).astype(np.float64)
        + (v("heart_rate") > 90)
        + ((v("resp_rate") > 20) | (v("paco2") < 32))
        + ((v("wbc") > 12) | (v("wbc") < 4)),
    )
    put("kinds_measured_now", measured_now.astype(np.float64))

    stay = grid.stay_of_row
    put("age", grid.age[stay])
    put("sex_female", grid.female[stay])
    put("hosp_adm_hours", grid.hosp_adm_hours[stay])
    put("icu_los_hours", grid.hour.astype(np.float64))

    if not filled.all():  # a catalogue entry without code is a programming error, not a data problem
        missing = [FEATURES[i].name for i in np.flatnonzero(~filled)]
        raise RuntimeError(f"extractor does not fill catalogue features: {missing}")
    return out


def _lagged(column: FloatArray, start: IntArray, lag: int, *, clamp: bool) -> FloatArray:
    """The column `lag` rows earlier in the same stay; before the stay's start NaN, or the first row if `clamp`."""
    row = np.arange(len(column))
    source = row - lag
    inside = source >= start
    if clamp:
        return column[np.where(inside, source, start)]
    return np.where(inside, column[np.maximum(source, 0)], np.nan)


def _rolling(
    block: FloatArray, start: IntArray, windows: tuple[int, ...]
) -> list[tuple[FloatArray, FloatArray, FloatArray]]:
    """Per window and column: min, max and mean of the measured values among the last `window` rows of the stay.

    One pass over the lags serves every window: a shorter window's answer is the running result at its last lag
    (sums are added in the same order either way, so the means are the same to the last bit).
    """
    n = block.shape[0]
    row = np.arange(n)
    measured = ~np.isnan(block)
    lo = block.copy()
    hi = block.copy()
    total = np.where(measured, block, 0.0)
    count = measured.astype(np.float64)
    results: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = {}

    def snapshot(window: int) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
        results[window] = (lo.copy(), hi.copy(), mean)

    for window in windows:
        if window <= 1:
            snapshot(window)
    for k in range(1, min(max(windows), n)):
        # Row r reads row r - k when that row is in the same stay; rows before k have nothing k rows back.
        same_stay = (row[k:] - k >= start[k:])[:, None]
        shifted = np.where(same_stay, block[:-k], np.nan)
        present = ~np.isnan(shifted)
        np.fmin(lo[k:], shifted, out=lo[k:])
        np.fmax(hi[k:], shifted, out=hi[k:])
        total[k:] += np.where(present, shifted, 0.0)
        count[k:] += present
        for window in windows:
            if window == k + 1:
                snapshot(window)
    for window in windows:
        if window not in results:  # longer than the whole grid
            snapshot(window)
    return [results[w] for w in windows]


def _points(column: FloatArray, cuts: tuple[float, ...], *, descending: bool) -> FloatArray:
    """SOFA-style points: one point per cut crossed (below the cut if `descending`), NaN where unmeasured."""
    points = np.zeros_like(column)
    for cut in cuts:
        points += (column < cut) if descending else (column >= cut)
    return np.where(np.isnan(column), np.nan, points)
