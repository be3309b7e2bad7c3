"""The HTML report from hand-made replay tables: its sections, figures that match the tables, nothing fetched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shadow.metrics import ALERT_METRICS
from shadow.report import (
    KEY_ALERT_METRICS,
    KEY_DIFFERENCES,
    ROW_METRICS,
    SECTIONS,
    ReplayTables,
    TableFormat,
    render_report,
    summarise_rows,
    write_tables,
)
from shadow.sweep import recommend
from tests.unit.shadow.report_html import read_report

ARMS = ("live:deterioration", "candidate:<b>deterioration</b>@0.1")


def _tables(budget: float = 1.5) -> ReplayTables:
    rng = np.random.default_rng(11)
    rows = pl.DataFrame(
        {
            "patient": ["a"] * 30 + ["b"] * 18 + ["c"] * 24,
            "unit": ["MICU"] * 48 + ["SICU"] * 24,
            "sepsis_label": [0] * 20 + [1] * 10 + [0] * 42,
        }
    )
    metrics = pl.DataFrame(
        [
            {"candidate": arm, "unit": unit, "metric": m, "value": v, "lo": v * 0.9, "hi": v * 1.1}
            for arm in ARMS
            for unit in ("all", "MICU", "SICU")
            for m in (*ROW_METRICS, *ALERT_METRICS)
            for v in [float(rng.uniform(0.1, 3.0))]
        ]
    )
    metrics = metrics.with_columns(
        pl.when((pl.col("unit") == "SICU") & (pl.col("metric") == "lead_time_median_h"))
        .then(float("nan"))
        .otherwise(pl.col("value"))
        .alias("value")
    )
    differences = pl.DataFrame(
        [
            {"candidate": ARMS[1], "versus": ARMS[0], "metric": m, "difference": d, "lo": d - 0.2, "hi": d + 0.2}
            for m in (*ROW_METRICS, *ALERT_METRICS)
            for d in [float(rng.normal())]
        ]
    )
    sweep = pl.DataFrame(
        {
            "policy": ["deterioration"] * 4,
            "threshold": [0.05, 0.1, 0.2, 0.4],
            "alerts_per_patient_day": [2.5, 1.4, 0.9, 0.4],
            "alerts_per_patient_day_lo": [2.2, 1.2, 0.7, 0.3],
            "alerts_per_patient_day_hi": [2.8, 1.6, 1.1, 0.5],
            "event_recall": [0.95, 0.9, 0.7, 0.5],
            "event_recall_lo": [0.9, 0.8, 0.6, 0.4],
            "event_recall_hi": [1.0, 0.95, 0.8, 0.6],
            "alert_precision": [0.05, 0.08, 0.1, 0.12],
            "lead_time_median_h": [6.0, 6.0, 5.0, 4.0],
            "lead_time_q25_h": [5.0, 5.0, 4.0, 3.0],
            "lead_time_q75_h": [7.0, 7.0, 6.0, 5.0],
            "share_of_stays_alerted": [0.6, 0.4, 0.3, 0.2],
            "normalised_utility": [0.3, 0.35, 0.3, 0.2],
            "budget": [budget] * 4,
            "recommended": [False, True, False, False],
        }
    )
    run = {"bootstrap": 200, "thresholds": {ARMS[0]: 0.0669, ARMS[1]: 0.1}, "model": "sepsis-hgb 1.0.0"}
    return ReplayTables(summarise_rows(rows), metrics, differences, sweep, run)


def _render(tables: ReplayTables) -> str:
    return render_report(tables, generated=datetime(2026, 1, 1, tzinfo=UTC))


def test_the_report_has_every_section_in_order() -> None:
    page = read_report(_render(_tables()))
    assert page.sections == list(SECTIONS)


def test_each_alert_figure_shows_the_metrics_table_values_for_every_arm() -> None:
    tables = _tables()
    page = read_report(_render(tables))
    for metric in KEY_ALERT_METRICS:
        marks = page.marks[f"arms:{metric}"]
        assert [m["data-label"] for m in marks] == list(ARMS)
        for mark in marks:
            row = tables.metrics.filter(candidate=mark["data-label"], unit="all", metric=metric).row(0, named=True)
            assert float(mark["data-value"]) == pytest.approx(row["value"], rel=1e-5)
            assert float(mark["data-lo"]) == pytest.approx(row["lo"], rel=1e-5)
            assert float(mark["data-hi"]) == pytest.approx(row["hi"], rel=1e-5)


def test_each_difference_figure_shows_the_differences_table() -> None:
    tables = _tables()
    page = read_report(_render(tables))
    for metric in KEY_DIFFERENCES:
        (mark,) = page.marks[f"difference:{metric}"]
        row = tables.differences.filter(metric=metric).row(0, named=True)
        assert mark["data-label"] == ARMS[1]
        assert float(mark["data-value"]) == pytest.approx(row["difference"], rel=1e-5)


def test_the_tradeoff_curve_plots_every_threshold_and_rings_the_recommended_one_within_budget() -> None:
    tables = _tables(budget=1.5)
    page = read_report(_render(tables))
    marks = page.marks["tradeoff"]
    points = [m for m in marks if m.get("class") == "sweep-point"]
    expected = tables.sweep.select("threshold", "alerts_per_patient_day", "event_recall").rows()
    assert [(float(p["data-threshold"]), float(p["data-x"]), float(p["data-y"])) for p in points] == expected
    (ring,) = [m for m in marks if m.get("class") == "recommended"]
    assert float(ring["data-threshold"]) == recommend(tables.sweep, 1.5).threshold == 0.1
    (line,) = [m for m in marks if m.get("class") == "budget"]
    assert float(line["data-value"]) == 1.5
    assert {m["data-label"] for m in marks if m.get("class") == "arm"} == set(ARMS)


def test_the_recommendation_follows_the_budget_stored_with_the_sweep() -> None:
    html = _render(_tables(budget=1.0))
    assert "Threshold 0.2: the highest event recall (70.0%)" in html
    assert "within the budget of 1 " in html


def test_nothing_is_loaded_from_elsewhere_and_no_script_runs() -> None:
    page = read_report(_render(_tables()))
    assert page.external == []
    assert not page.tags & {"script", "link", "img", "iframe", "object", "embed"}


def test_arm_names_are_escaped_and_a_missing_value_reads_as_a_dash() -> None:
    html = _render(_tables())
    assert "<b>deterioration</b>" not in html
    assert "&lt;b&gt;deterioration&lt;/b&gt;" in html
    assert "—" in html  # the SICU lead time is NaN


def test_the_data_summary_counts_stays_hours_and_septic_stays_by_unit() -> None:
    summary = _tables().summary
    assert summary.filter(unit="all").row(0, named=True) == {
        "unit": "all",
        "stays": 3,
        "rows": 72,
        "patient_days": 3.0,
        "septic_stays": 1,
        "septic_share": pytest.approx(1 / 3),
    }
    assert summary.filter(unit="MICU")["stays"].item() == 2


@pytest.mark.parametrize("fmt", list(TableFormat))
def test_the_tables_are_written_in_the_chosen_format_and_read_back_equal(tmp_path: Path, fmt: TableFormat) -> None:
    tables = _tables()
    paths = write_tables(tables, tmp_path, fmt)
    assert sorted(p.name for p in paths) == sorted(f"{n}.{fmt.value}" for n in tables.named())
    path = tmp_path / f"metrics.{fmt.value}"
    back = pl.read_csv(path) if fmt is TableFormat.CSV else pl.read_parquet(path)
    assert back.drop("value").equals(tables.metrics.drop("value"))
    assert np.allclose(back["value"].to_numpy(), tables.metrics["value"].to_numpy(), equal_nan=True)
