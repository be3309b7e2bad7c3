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
    out = np.full((n, len(FEATURES)), np.nan, dtype=np.float32)
    filled = np.zeros(len(FEATURES), dtype=bool)

    def put(name: str, column: FloatArray) -> None:
        i = FEATURE_INDEX[name]
        out[:, i] = column
        filled[i] = True

    values = grid.values
    row = np.arange(n, dtype=np.int64)
    start = grid.start_of_row
    valid = ~np.isnan(values)

    # Index of the latest measured row so far; a running maximum over all rows, then anything before the
    # row's own stay is treated as "never measured in this stay".
    last = np.maximum.accumulate(np.where(valid, row[:, None], -1), axis=0)
    seen = last >= start[:, None]
    last_safe = np.where(seen, last, 0)
    cols = np.arange(values.shape[1])[None, :]
    locf = np.where(seen, values[last_safe, cols], np.nan)
    hours_since = np.where(seen, (row[:, None] - last), np.nan)
    cum = np.cumsum(valid, axis=0)
    before_stay = (cum - valid)[start]
    count = cum - before_stay
    # The measurement before the latest one: the running index at the row just before the latest measurement.
    before_last = np.where(seen, last_safe - 1, 0)
    prev = np.where(before_last >= 0, last[np.maximum(before_last, 0), cols], -1)
    has_prev = seen & (last_safe - 1 >= start[:, None]) & (prev >= start[:, None])
    delta = np.where(has_prev, locf - values[np.maximum(prev, 0), cols], np.nan)

    for kind, j in _COL.items():
        put(kind, locf[:, j])
        put(f"{kind}__hours_since", hours_since[:, j])
        put(f"{kind}__count", count[:, j])
        put(f"{kind}__delta", delta[:, j])

    vitals = [_COL[kind] for kind in VITAL_KINDS]
    for w in ROLLING_WINDOWS:
        lo, hi, mean = _rolling(values[:, vitals], start, w)
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
    put("kinds_measured_now", valid.sum(axis=1).astype(np.float64))

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


def _rolling(block: FloatArray, start: IntArray, window: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per column: min, max and mean of the measured values among the last `window` rows of the same stay."""
    n = block.shape[0]
    row = np.arange(n)
    measured = ~np.isnan(block)
    lo = block.copy()
    hi = block.copy()
    total = np.where(measured, block, 0.0)
    count = measured.astype(np.float64)
    for k in range(1, min(window, n)):
        shifted = np.full_like(block, np.nan)
        shifted[k:] = block[:-k]
        shifted[row - k < start] = np.nan
        present = ~np.isnan(shifted)
        lo = np.fmin(lo, shifted)
        hi = np.fmax(hi, shifted)
        total += np.where(present, shifted, 0.0)
        count += present
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return lo, hi, mean


def _points(column: FloatArray, cuts: tuple[float, ...], *, descending: bool) -> FloatArray:
    """SOFA-style points: one point per cut crossed (below the cut if `descending`), NaN where unmeasured."""
    points = np.zeros_like(column)
    for cut in cuts:
        points += (column < cut) if descending else (column >= cut)
    return np.where(np.isnan(column), np.nan, points)
