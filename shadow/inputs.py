"""Replay inputs: every row of a PhysioNet table scored in one batch (one extraction, one model call), as arrays.

The policy pass and the metrics read only these arrays, so the table and feature matrix are dropped early.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from clinical.physionet import UNKNOWN_UNIT
from scoring.features.grid import GRID_KINDS, grid_from_table
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

    @property
    def rows(self) -> int:
        return len(self.hours)

    @property
    def stay_of_row(self) -> IntArray:
        return np.repeat(np.arange(len(self.starts)), np.diff(np.append(self.starts, self.rows)))


def patient_key(stay_id: str) -> str:
    """The pseudonymous key a stay is decided under (a stay id never reaches a log or an output)."""
    return hashlib.sha256(f"replay|{stay_id}".encode()).hexdigest()[:16]


def replay_input(table: pl.DataFrame, model: LoadedModel, watched_kinds: tuple[str, ...] = ()) -> ReplayInput:
    """Score every row of a `load_table` table and gather what the policy pass needs."""
    grid = grid_from_table(table)
    scores = score_grid(model, grid)
    starts = grid.starts
    n = table.height
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
    units = (
        table["unit"].fill_null(UNKNOWN_UNIT).to_numpy()[starts]
        if "unit" in table.columns
        else np.full(len(starts), UNKNOWN_UNIT)
    )
    labels = table["sepsis_label"].fill_null(0).to_numpy() if "sepsis_label" in table.columns else np.zeros(n)
    return ReplayInput(
        stay_ids=grid.stay_ids,
        starts=starts,
        hours=grid.hour,
        scores=scores,
        labels=np.asarray(labels, dtype=np.int8),
        units=tuple(str(u) for u in units),
        ages=grid.age,
        partial=partial,
        last_measured={k: latest(column[k]) for k in watched_kinds if k in column},
    )
