"""The hourly grid every model feature is computed from: rows are ICU hours, columns are kinds, NaN is "not measured".

Two adapters build it: `grid_from_table` from the PhysioNet-shaped table (training, batch replay) and
`grid_from_context` from the live canonical `ClinicalContext`. Both feed the one extractor in `extract.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from clinical.codes import QUANTITIES
from clinical.model import ClinicalContext, Observation, Sex

# The grid's columns: every kind that the PhysioNet 2019 tables carry, in the quantity table's order.
GRID_KINDS: tuple[str, ...] = tuple(q.kind for q in QUANTITIES if q.physionet_column)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class HourlyGrid:
    """Many stays stacked row-wise; `starts[i]` is the first row of stay i and its rows are consecutive ICU hours.

    `hour` is ICULOS: hour 1 covers the first 60 minutes after ICU admission. Static values are per stay.
    """

    values: FloatArray  # (rows, len(GRID_KINDS))
    hour: IntArray  # (rows,)
    starts: IntArray  # (stays,)
    stay_ids: tuple[str, ...]
    age: FloatArray  # (stays,)
    female: FloatArray  # (stays,) 1.0 female, 0.0 male, NaN unknown
    hosp_adm_hours: FloatArray  # (stays,) hospital admission relative to ICU admission (hours, usually <= 0)

    def __post_init__(self) -> None:
        rows = self.values.shape[0]
        if self.values.ndim != 2 or self.values.shape[1] != len(GRID_KINDS):
            raise ValueError(f"grid values must have shape (rows, {len(GRID_KINDS)})")
        if self.hour.shape != (rows,):
            raise ValueError("one hour per row is required")
        n = len(self.stay_ids)
        if self.starts.shape != (n,) or self.age.shape != (n,) or self.female.shape != (n,):
            raise ValueError("starts, age and sex need one entry per stay")
        if n and (self.starts[0] != 0 or np.any(np.diff(self.starts) <= 0) or self.starts[-1] >= rows):
            raise ValueError("stay starts must begin at 0 and increase strictly")
        # Windows are counted in rows, so each stay's rows must be consecutive hours.
        steps = np.diff(self.hour)
        boundary = np.zeros(rows, dtype=bool)
        boundary[self.starts] = True
        if np.any(steps[~boundary[1:]] != 1):
            raise ValueError("each stay's rows must be consecutive hours")

    @property
    def stay_of_row(self) -> IntArray:
        """Index of the stay each row belongs to."""
        counts = np.diff(np.append(self.starts, self.values.shape[0]))
        return np.repeat(np.arange(len(self.starts), dtype=np.int64), counts)

    @property
    def start_of_row(self) -> IntArray:
        """Index of the first row of the stay each row belongs to."""
        return self.starts[self.stay_of_row]


def grid_from_table(table: pl.DataFrame) -> HourlyGrid:
    """The grid of a PhysioNet-shaped table (`clinical.physionet.load_table`); stays keep their order of appearance.

    Rows must already be sorted by hour within each stay (as the .psv files are); kinds absent from the table are
    all-NaN columns.
    """
    if table.height == 0:
        raise ValueError("the table has no rows")
    stay = table["stay_id"].cast(pl.Utf8).to_numpy()
    change = np.ones(len(stay), dtype=bool)
    change[1:] = stay[1:] != stay[:-1]
    starts = np.flatnonzero(change).astype(np.int64)
    stay_ids = tuple(str(s) for s in stay[starts])
    if len(set(stay_ids)) != len(stay_ids):
        raise ValueError("each stay's rows must be contiguous in the table")
    values = np.full((table.height, len(GRID_KINDS)), np.nan)
    for j, kind in enumerate(GRID_KINDS):
        if kind in table.columns:
            values[:, j] = table[kind].cast(pl.Float64).fill_null(np.nan).to_numpy()
    hour = table["hour"].cast(pl.Int64).to_numpy()

    def _static(column: str) -> FloatArray:
        if column not in table.columns:
            return np.full(len(starts), np.nan)
        return np.asarray(table[column].cast(pl.Float64).fill_null(np.nan).to_numpy()[starts], dtype=np.float64)

    female = np.full(len(starts), np.nan)
    if "sex" in table.columns:
        sex = table["sex"].cast(pl.Utf8).to_numpy()[starts]
        female = np.where(sex == Sex.FEMALE.value, 1.0, np.where(sex == Sex.MALE.value, 0.0, np.nan))
    return HourlyGrid(
        values=values,
        hour=np.asarray(hour, dtype=np.int64),
        starts=starts,
        stay_ids=stay_ids,
        age=_static("age"),
        female=female,
        hosp_adm_hours=_static("hosp_adm_time"),
    )


_HOUR = timedelta(hours=1)


def hour_of(instant: datetime, icu_admission_utc: datetime) -> int:
    """ICULOS of an instant: 1 for the first 60 minutes after ICU admission, 0 or less before admission."""
    return math.floor((instant - icu_admission_utc).total_seconds() / 3600.0) + 1


def grid_from_context(
    context: ClinicalContext,
    icu_admission_utc: datetime,
    as_of: datetime,
    *,
    hospital_admission_utc: datetime | None = None,
    stay_id: str = "live",
) -> tuple[HourlyGrid, dict[str, Observation]]:
    """The one-stay grid of a live context, hours 1 .. the hour holding `as_of`; the latest value in an hour wins.

    Observations before ICU admission or after `as_of`, excluded ones and kinds outside the grid are left out.
    Also returns, per kind, the observation whose value the last row carries forward (for provenance).
    """
    last_hour = max(hour_of(as_of, icu_admission_utc), 1)
    # Where each chosen value goes in the grid (flat, row-major) and the value, placed in one call at the end.
    cells: list[int] = []
    measured: list[float] = []
    carried: list[tuple[int, int, Observation]] = []
    for j, kind in enumerate(GRID_KINDS):
        # The context's usable observations of the kind, with an effective time, in document order.
        chosen: dict[int, Observation] = {}
        for obs in context.usable(kind):
            at = obs.effective_utc
            if obs.value is None or at is None or at > as_of:
                continue
            # `hour_of` without the call or its float division: whole hours since admission, plus one. Sub-second
            # parts never carry a time across an hour's boundary, so whole seconds are enough.
            since = at - icu_admission_utc
            h = (since.days * 86400 + since.seconds) // 3600 + 1
            if h < 1:
                continue
            held = chosen.get(h)
            # Later in the hour wins; `>=` makes the later of two simultaneous entries (document order) win.
            if held is None or (held.effective_utc is not None and at >= held.effective_utc):
                chosen[h] = obs
        if chosen:
            for h, obs in chosen.items():
                cells.append((h - 1) * len(GRID_KINDS) + j)
                measured.append(obs.value)  # type: ignore[arg-type]  # None was skipped above
            carried.append((min(chosen), j, chosen[max(chosen)]))
    values = np.full((last_hour, len(GRID_KINDS)), np.nan)
    values.put(
        np.fromiter(cells, dtype=np.int64, count=len(cells)),
        np.fromiter(measured, dtype=np.float64, count=len(measured)),
    )
    # Kinds in the order of their first measured hour (then grid column), as the hour-by-hour fill always gave.
    latest = {GRID_KINDS[j]: obs for _, j, obs in sorted(carried, key=lambda c: c[:2])}
    patient = context.patient
    age = patient.age_years if patient is not None and patient.age_years is not None else math.nan
    sex = patient.sex if patient is not None else Sex.UNKNOWN
    female = 1.0 if sex is Sex.FEMALE else 0.0 if sex is Sex.MALE else math.nan
    hosp = math.nan
    if hospital_admission_utc is not None:
        hosp = (hospital_admission_utc - icu_admission_utc).total_seconds() / 3600.0
    # One stay of consecutive hours from 1 by construction: the checks of HourlyGrid's own constructor, a dozen
    # numpy calls, would cost this hot path more than building the grid.
    grid = _unchecked(
        values=values,
        hour=np.arange(1, last_hour + 1, dtype=np.int64),
        starts=np.zeros(1, dtype=np.int64),
        stay_ids=(stay_id,),
        age=np.array([age]),
        female=np.array([female]),
        hosp_adm_hours=np.array([hosp]),
    )
    return grid, latest


def _unchecked(**fields: object) -> HourlyGrid:
    """An HourlyGrid whose fields are known to satisfy its checks; the same object its constructor would make."""
    grid = object.__new__(HourlyGrid)
    for name in HourlyGrid.__dataclass_fields__:
        object.__setattr__(grid, name, fields[name])
    return grid


def stack_grids(grids: Sequence[HourlyGrid]) -> HourlyGrid:
    """Several grids as one (e.g. many live stays scored in one batch)."""
    if not grids:
        raise ValueError("no grids to stack")
    sizes = np.array([g.values.shape[0] for g in grids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return HourlyGrid(
        values=np.vstack([g.values for g in grids]),
        hour=np.concatenate([g.hour for g in grids]),
        starts=np.concatenate([g.starts + o for g, o in zip(grids, offsets, strict=True)]),
        stay_ids=tuple(s for g in grids for s in g.stay_ids),
        age=np.concatenate([g.age for g in grids]),
        female=np.concatenate([g.female for g in grids]),
        hosp_adm_hours=np.concatenate([g.hosp_adm_hours for g in grids]),
    )
