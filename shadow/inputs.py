"""Replay inputs: every row of a PhysioNet table (or of FHIR data on the same grid) scored in batches, as arrays.

The policy pass and the metrics read only these arrays, so the table and feature matrix are dropped early.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from clinical.physionet import UNKNOWN_UNIT
from scoring.features.grid import GRID_KINDS, HourlyGrid, grid_from_table
from scoring.model.registry import LoadedModel
from scoring.model.scorer import score_grid

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ReplayInput:
    """Stays stacked row-wise (`starts`), with each row's ICU hour, model score and label, and each stay's facts."""

    stay_ids: tuple[str, ...]
    starts: IntArray
    hours: IntArray
    scores: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int8]
    units: tuple[str, ...]
    ages: npt.NDArray[np.float64]
    # Rows whose key inputs were never measured so far in the stay (the live scorer marks these partial).
    partial: npt.NDArray[np.bool_]
    # Per kind a policy may wait for: the row of its latest measurement so far in the stay, -1 if none yet.
    last_measured: dict[str, IntArray]
    # False when the data carries no outcome labels (FHIR): then only alert-burden metrics mean anything.
    labelled: bool = True
    # Per stay, the real ICU admission and unit type when the data has them (FHIR); None: PhysioNet's simulated
    # admission instant and an ICU for every stay.
    admissions: tuple[datetime, ...] | None = None
    unit_types: tuple[str, ...] | None = None

    @property
    def rows(self) -> int:
        return len(self.hours)

    @property
    def stay_of_row(self) -> IntArray:
        return np.repeat(np.arange(len(self.starts)), np.diff(np.append(self.starts, self.rows)))


def patient_key(stay_id: str) -> str:
    """The pseudonymous key a stay is decided under (a stay id never reaches a log or an output)."""
    return hashlib.sha256(f"replay|{stay_id}".encode()).hexdigest()[:16]


def score_in_parts(model: LoadedModel, grid: HourlyGrid, threads: int, rows: int = 50_000) -> npt.NDArray[np.float32]:
    """`score_grid` on runs of whole stays of about `rows` rows, in threads (numpy and onnxruntime release the GIL
    while they work; small runs also stay in cache). Features only read rows of their own stay, so the scores are
    those of one batch."""
    n = grid.values.shape[0]
    cuts = sorted({0, len(grid.starts), *np.searchsorted(grid.starts, np.arange(rows, n, rows)).tolist()})
    pieces = [_stays_of(grid, a, b) for a, b in itertools.pairwise(cuts)]
    if len(pieces) == 1:
        return score_grid(model, grid)
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        return np.concatenate(list(pool.map(lambda g: score_grid(model, g), pieces)))


def _stays_of(grid: HourlyGrid, first: int, last: int) -> HourlyGrid:
    lo = int(grid.starts[first])
    hi = int(grid.starts[last]) if last < len(grid.starts) else grid.values.shape[0]
    return HourlyGrid(
        values=grid.values[lo:hi],
        hour=grid.hour[lo:hi],
        starts=grid.starts[first:last] - lo,
        stay_ids=grid.stay_ids[first:last],
        age=grid.age[first:last],
        female=grid.female[first:last],
        hosp_adm_hours=grid.hosp_adm_hours[first:last],
    )


def replay_input(table: pl.DataFrame, model: LoadedModel, watched_kinds: tuple[str, ...] = ()) -> ReplayInput:
    """Score every row of a `load_table` table and gather what the policy pass needs."""
    grid = grid_from_table(table)
    starts = grid.starts
    units = (
        table["unit"].fill_null(UNKNOWN_UNIT).to_numpy()[starts]
        if "unit" in table.columns
        else np.full(len(starts), UNKNOWN_UNIT)
    )
    labels = table["sepsis_label"].fill_null(0).to_numpy() if "sepsis_label" in table.columns else None
    return grid_input(grid, model, watched_kinds, tuple(str(u) for u in units), labels)


def grid_input(
    grid: HourlyGrid,
    model: LoadedModel,
    watched_kinds: tuple[str, ...],
    units: tuple[str, ...],
    labels: npt.ArrayLike | None = None,
    *,
    admissions: tuple[datetime, ...] | None = None,
    unit_types: tuple[str, ...] | None = None,
) -> ReplayInput:
    """Score every row of a grid and gather what the policy pass needs; `labels` None: the data has none."""
    scores = score_in_parts(model, grid, len(os.sched_getaffinity(0)))
    starts = grid.starts
    n = grid.values.shape[0]
    row = np.arange(n, dtype=np.int64)
    start_of_row = grid.start_of_row

    def latest(column: int) -> IntArray:
        measured = np.where(~np.isnan(grid.values[:, column]), row, -1)
        last = np.maximum.accumulate(measured)
        return np.where(last >= start_of_row, last, -1)

    column = {kind: j for j, kind in enumerate(GRID_KINDS)}
    partial = np.zeros(n, dtype=bool)
    for kind in model.card.key_inputs:
        if kind in column:
            partial |= latest(column[kind]) < 0
    return ReplayInput(
        stay_ids=grid.stay_ids,
        starts=starts,
        hours=grid.hour,
        scores=scores,
        labels=np.zeros(n, dtype=np.int8) if labels is None else np.asarray(labels, dtype=np.int8),
        units=units,
        ages=grid.age,
        partial=partial,
        last_measured={k: latest(column[k]) for k in watched_kinds if k in column},
        labelled=labels is not None,
        admissions=admissions,
        unit_types=unit_types,
    )
