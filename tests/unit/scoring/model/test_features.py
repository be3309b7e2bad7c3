"""The hourly grid and the one extractor: causal, per-stay, identical for live contexts and batch tables."""

from __future__ import annotations

import importlib
import math
from datetime import timedelta
from random import Random

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinical.model import ClinicalContext, ExclusionReason, Observation, Provenance
from scoring.features import (
    FEATURE_INDEX,
    FEATURES,
    GRID_KINDS,
    HourlyGrid,
    extract,
    grid_from_context,
    grid_from_table,
)
from scoring.features.grid import stack_grids
from tests.strategies import hourly_grids
from tests.unit.scoring.model.stays import ICU_ADMISSION, as_of_hour, context_of_table, synthetic_stay, table_of_rows

# The module, not the function that the package exports under the same name.
extract_module = importlib.import_module("scoring.features.extract")
HR = GRID_KINDS.index("heart_rate")
SBP = GRID_KINDS.index("sbp")


def _grid(stays: list[list[dict[str, float]]]) -> HourlyGrid:
    """A grid of stays given as {kind: value} per hour."""
    rows = [r for stay in stays for r in stay]
    values = np.full((len(rows), len(GRID_KINDS)), np.nan)
    for i, r in enumerate(rows):
        for kind, v in r.items():
            values[i, GRID_KINDS.index(kind)] = v
    starts = np.cumsum([0] + [len(s) for s in stays[:-1]])
    hours = np.concatenate([np.arange(1, len(s) + 1) for s in stays])
    n = len(stays)
    return HourlyGrid(
        values,
        hours,
        starts.astype(np.int64),
        tuple(f"s{i}" for i in range(n)),
        np.full(n, 60.0),
        np.zeros(n),
        np.full(n, -3.0),
    )


def col(features: np.ndarray, name: str) -> list[float]:
    return [None if math.isnan(v) else round(float(v), 4) for v in features[:, FEATURE_INDEX[name]]]


def test_last_value_is_carried_forward_with_hours_since_and_count() -> None:
    x = extract(_grid([[{"heart_rate": 90}, {}, {}, {"heart_rate": 120}, {}]]))
    assert col(x, "heart_rate") == [90, 90, 90, 120, 120]
    assert col(x, "heart_rate__hours_since") == [0, 1, 2, 0, 1]
    assert col(x, "heart_rate__count") == [1, 1, 1, 2, 2]
    assert col(x, "heart_rate__delta") == [None, None, None, 30, 30]


def test_a_value_never_measured_stays_missing_rather_than_zero() -> None:
    x = extract(_grid([[{"heart_rate": 90}, {}]]))
    assert col(x, "lactate") == [None, None]
    assert col(x, "lactate__hours_since") == [None, None]
    assert col(x, "lactate__count") == [0, 0]


def test_nothing_is_carried_from_one_stay_into_the_next() -> None:
    x = extract(_grid([[{"heart_rate": 150, "sbp": 80}, {"heart_rate": 140}], [{}, {"sbp": 120}]]))
    assert col(x, "heart_rate")[2:] == [None, None]
    assert col(x, "heart_rate__max_6h")[2:] == [None, None]
    assert col(x, "heart_rate__count")[2:] == [0, 0]
    assert col(x, "sbp__delta")[2:] == [None, None]
    assert col(x, "sbp__hours_since")[2:] == [None, 0]


def test_rolling_windows_cover_only_the_last_hours() -> None:
    hr = [{"heart_rate": float(v)} for v in (100, 60, 70, 80, 90, 95, 99, 98)]
    x = extract(_grid([hr]))
    assert col(x, "heart_rate__max_6h") == [100, 100, 100, 100, 100, 100, 99, 99]
    assert col(x, "heart_rate__min_6h") == [100, 60, 60, 60, 60, 60, 60, 70]
    assert col(x, "heart_rate__mean_6h")[7] == round((70 + 80 + 90 + 95 + 99 + 98) / 6, 4)
    assert col(x, "heart_rate__change_6h") == [None] * 6 + [99 - 100, 98 - 60]


def test_derived_scores_follow_their_definitions() -> None:
    x = extract(
        _grid(
            [
                [
                    {
                        "heart_rate": 120,
                        "sbp": 80,
                        "map": 60,
                        "platelets": 45,
                        "creatinine": 2.5,
                        "bilirubin_total": 0.8,
                        "resp_rate": 24,
                        "temperature": 38.5,
                        "wbc": 15,
                    }
                ]
            ]
        )
    )
    assert col(x, "shock_index") == [1.5]
    assert col(x, "sofa_coagulation") == [3]
    assert col(x, "sofa_renal") == [2]
    assert col(x, "sofa_liver") == [0]
    assert col(x, "sofa_cardiovascular") == [1]
    assert col(x, "sofa_partial") == [6]
    assert col(x, "qsofa_partial") == [2]
    assert col(x, "sirs_partial") == [4]


def test_demographics_and_length_of_stay_reach_every_row() -> None:
    x = extract(_grid([[{}, {}, {}]]))
    assert col(x, "age") == [60, 60, 60]
    assert col(x, "icu_los_hours") == [1, 2, 3]
    assert col(x, "hosp_adm_hours") == [-3, -3, -3]


def test_every_catalogue_feature_is_a_column() -> None:
    assert extract(_grid([[{}]])).shape == (1, len(FEATURES))


def test_a_grid_with_a_gap_in_its_hours_is_refused() -> None:
    with pytest.raises(ValueError, match="consecutive hours"):
        HourlyGrid(
            np.full((2, len(GRID_KINDS)), np.nan),
            np.array([1, 3]),
            np.array([0]),
            ("s",),
            np.array([1.0]),
            np.array([0.0]),
            np.array([0.0]),
        )


@settings(max_examples=40, deadline=None)
@given(hourly_grids(kinds=len(GRID_KINDS)))
def test_a_row_never_depends_on_later_hours(grid: HourlyGrid) -> None:
    before = extract(grid)
    # Change every value after the middle row of the stacked grid; rows up to it must not move.
    cut = grid.values.shape[0] // 2
    changed = grid.values.copy()
    changed[cut + 1 :] = np.where(np.isnan(changed[cut + 1 :]), 1.0, np.nan)
    after = extract(
        HourlyGrid(changed, grid.hour, grid.starts, grid.stay_ids, grid.age, grid.female, grid.hosp_adm_hours)
    )
    np.testing.assert_array_equal(before[: cut + 1], after[: cut + 1])


@settings(max_examples=25, deadline=None)
@given(hourly_grids(kinds=len(GRID_KINDS)))
def test_stays_are_extracted_alike_alone_or_stacked(grid: HourlyGrid) -> None:
    ends = np.append(grid.starts[1:], grid.values.shape[0])
    alone = [
        extract(
            HourlyGrid(
                grid.values[s:e],
                grid.hour[s:e],
                np.array([0]),
                (grid.stay_ids[i],),
                grid.age[i : i + 1],
                grid.female[i : i + 1],
                grid.hosp_adm_hours[i : i + 1],
            )
        )
        for i, (s, e) in enumerate(zip(grid.starts, ends, strict=True))
    ]
    np.testing.assert_array_equal(np.vstack(alone), extract(grid))


@settings(max_examples=40, deadline=None)
@given(hourly_grids(kinds=len(GRID_KINDS)), st.randoms(use_true_random=False))
def test_asking_for_some_rows_gives_those_rows_of_the_whole_matrix_to_the_bit(grid: HourlyGrid, rnd: Random) -> None:
    # The live hook asks for one row only; it must get exactly the bits batch replay computes for that row, NaNs
    # included, whichever rows are asked for and in whatever order.
    n = grid.values.shape[0]
    rows = np.array([*rnd.sample(range(n), rnd.randint(1, n)), n - 1, int(grid.starts[-1])], dtype=np.int64)
    whole = extract(grid)
    np.testing.assert_array_equal(extract(grid, rows).view(np.uint32), whole[rows].view(np.uint32))


# Values where the scores' comparisons turn (SOFA cuts, qSOFA and SIRS limits, MAP 70, a zero divisor) beside
# ordinary ones: the one-row path must agree with the batch path exactly there too.
_EDGES = [0.0, 0.5, 1.2, 2.0, 3.5, 4.0, 5.0, 6.0, 12.0, 20.0, 22.0, 32.0, 36.0, 38.0, 50.0, 70.0, 90.0, 100.0, 150.0]


@st.composite
def _edgy_grids(draw: st.DrawFn, signed_zeros: bool = False) -> HourlyGrid:
    """Grids of 1-4 stays of 1-40 hours whose measured values are often exactly at a score's turning point."""
    lengths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = sum(lengths)
    edges = np.array([*_EDGES, -3.0, 1e-3])
    if signed_zeros:
        # Windows of zeros only, of one sign or both, and zeros beside other values.
        edges = np.array(draw(st.sampled_from([[0.0, -0.0], [-0.0], [0.0, -0.0, 1.0, -1.0], [*_EDGES, -0.0, -0.0]])))
    values = np.where(
        rng.random((rows, len(GRID_KINDS))) < (1.0 if signed_zeros else 0.5),
        rng.choice(edges, size=(rows, len(GRID_KINDS))),
        rng.normal(60.0, 40.0, size=(rows, len(GRID_KINDS))),
    )
    values[rng.random((rows, len(GRID_KINDS))) >= draw(st.sampled_from([0.05, 0.3, 0.7, 1.0]))] = np.nan
    n = len(lengths)
    return HourlyGrid(
        values,
        np.concatenate([np.arange(1, k + 1) for k in lengths]).astype(np.int64),
        np.cumsum([0, *lengths[:-1]]).astype(np.int64),
        tuple(f"s{i}" for i in range(n)),
        rng.choice([np.nan, 45.0, 80.5], n),
        rng.choice([np.nan, 0.0, 1.0], n),
        rng.choice([np.nan, -0.0, -12.25], n),
    )


@settings(max_examples=60, deadline=None)
@given(st.one_of(_edgy_grids(), hourly_grids(kinds=len(GRID_KINDS))))
def test_each_row_asked_for_alone_is_that_row_of_the_batch_matrix_to_the_bit(grid: HourlyGrid) -> None:
    # The live hook's one-row path and batch replay's whole-matrix path are two vectorisations of one definition.
    whole = extract(grid).view(np.uint32)
    for row in range(grid.values.shape[0]):
        np.testing.assert_array_equal(extract(grid, np.array([row])).view(np.uint32), whole[row : row + 1])


@settings(max_examples=40, deadline=None)
@given(_edgy_grids(signed_zeros=True))
def test_the_one_row_path_gives_what_the_general_path_gives_for_that_row_even_with_signed_zeros(
    grid: HourlyGrid,
) -> None:
    # numpy's min and max may pick either zero of a tie of 0.0 and -0.0 depending on how long the arrays are, so a
    # row's window minimum can differ in sign between batch and live; live scores must still be what they were when
    # the live hook ran the general path on its one row.
    n = grid.values.shape[0]
    stay = grid.stay_of_row
    start = grid.starts[stay]
    for row in range(n):
        general = extract_module._features(grid, 0, n, start, stay, np.array([row]))
        np.testing.assert_array_equal(extract(grid, np.array([row])).view(np.uint32), general.view(np.uint32))


def test_asking_for_a_row_outside_the_grid_is_refused() -> None:
    with pytest.raises(IndexError):
        extract(_grid([[{}, {}]]), np.array([2]))


def test_a_batch_cut_into_blocks_of_whole_stays_is_extracted_as_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    stays = [synthetic_stay(rng, hours=int(h), septic=bool(i % 2)) for i, h in enumerate(rng.integers(3, 40, 30))]
    table = pl.concat([table_of_rows(f"p{i}", rows) for i, rows in enumerate(stays)], how="diagonal_relaxed")
    grid = grid_from_table(table)
    whole = extract(grid)
    # Blocks shorter than a stay, and blocks that end inside a stay, must still cut at a stay's first row.
    for block in (1, 7, 50):
        monkeypatch.setattr(extract_module, "_BLOCK_ROWS", block)
        np.testing.assert_array_equal(extract(grid).view(np.uint32), whole.view(np.uint32))


@pytest.mark.parametrize("first_hour", [1, 4])
def test_live_context_and_batch_table_give_identical_features_for_every_hour(first_hour: int) -> None:
    rng = np.random.default_rng(3)
    table = table_of_rows("p1", synthetic_stay(rng, hours=30, septic=True, first_hour=first_hour))
    batch = extract(grid_from_table(table))
    context = context_of_table(table, rng)
    for i, hour in enumerate(table["hour"]):
        grid, _ = grid_from_context(
            context,
            ICU_ADMISSION,
            as_of_hour(hour),
            hospital_admission_utc=ICU_ADMISSION + timedelta(hours=table["hosp_adm_time"][0]),
        )
        live = extract(grid)[-1]
        np.testing.assert_array_equal(live, batch[i], err_msg=f"hour {hour}")


@pytest.mark.parametrize("hours", [1, 2, 30])
def test_a_live_grid_is_one_the_grid_checks_accept(hours: int) -> None:
    # grid_from_context skips HourlyGrid's checks, as it builds a valid grid by construction; rebuilding it through
    # the checking constructor must give the same grid.
    rng = np.random.default_rng(hours)
    table = table_of_rows("p1", synthetic_stay(rng, hours=hours, septic=False))
    for hour in table["hour"]:
        live, _ = grid_from_context(context_of_table(table, rng), ICU_ADMISSION, as_of_hour(hour))
        HourlyGrid(live.values, live.hour, live.starts, live.stay_ids, live.age, live.female, live.hosp_adm_hours)
        assert (live.hour.dtype, live.starts.dtype, live.values.dtype) == (np.int64, np.int64, np.float64)


def _obs(kind: str, value: float | None, minutes: float, excluded: ExclusionReason | None = None) -> Observation:
    return Observation(
        kind=kind,
        loinc=None,
        value=value,
        unit=None,
        effective_utc=ICU_ADMISSION + timedelta(minutes=minutes),
        effective_source=None,
        status="final",
        provenance=Provenance("Observation", f"{kind}-{minutes}"),
        excluded=excluded,
    )


def test_the_latest_value_in_an_hour_wins_and_excluded_or_future_values_are_ignored() -> None:
    context = ClinicalContext(
        patient=None,
        observations=(
            _obs("heart_rate", 130, 50),
            _obs("heart_rate", 100, 10),
            _obs("heart_rate", None, 58, ExclusionReason.OUT_OF_RANGE),
            _obs("heart_rate", 180, 150),  # after as_of
            _obs("heart_rate", 170, -30),  # before ICU admission
            _obs("gcs_total", 9, 20),  # not a grid kind
        ),
    )
    grid, latest = grid_from_context(context, ICU_ADMISSION, ICU_ADMISSION + timedelta(minutes=119))
    assert grid.values.shape[0] == 2
    assert grid.values[0, HR] == 130
    assert math.isnan(grid.values[1, HR])
    assert latest["heart_rate"].value == 130
    assert np.isnan(grid.values[:, [i for i in range(len(GRID_KINDS)) if i != HR]]).all()


def test_several_live_grids_stack_into_one_batch() -> None:
    one = _grid([[{"heart_rate": 1.0}]])
    two = _grid([[{}, {"sbp": 2.0}]])
    both = stack_grids([one, two])
    assert both.starts.tolist() == [0, 1]
    assert both.values[2, SBP] == 2.0
