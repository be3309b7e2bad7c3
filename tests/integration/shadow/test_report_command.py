"""`cdsctl replay --budget` then `cdsctl report` on a slice of set A: one offline HTML file whose figures are the
replay's tables, and the tables themselves as Parquet and CSV."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cdsctl.cli import app
from shadow.report import KEY_ALERT_METRICS, SECTIONS
from shadow.sweep import recommend
from tests.unit.shadow.report_html import read_report

STAYS = "40"


@pytest.fixture(scope="module")
def replayed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay")
    data = shared_data / "physionet2019" / "training_setA.tar.gz"
    result = CliRunner().invoke(
        app,
        [
            "replay", str(data), "--live", "deterioration", "--candidate", "deterioration@0.1", "--out", str(out),
            "--stays", STAYS, "--workers", "1", "--bootstrap", "20", "--budget", "3", "--grid", "0.05,0.1,0.3",
            "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "40 stays" in result.output
    return out


def test_the_replay_folder_holds_the_sweep_with_its_budget_beside_the_replay_tables(replayed: Path) -> None:
    sweep = pl.read_parquet(replayed / "sweep.parquet")
    assert sweep["threshold"].to_list() == [0.05, 0.1, 0.3]
    assert set(sweep["budget"]) == {3.0}
    assert (replayed / "run.json").is_file()


def test_the_report_has_its_sections_and_its_figures_show_the_replay_tables(replayed: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(replayed), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = read_report(out.read_text(encoding="utf-8"))
    assert page.sections == list(SECTIONS)
    assert page.external == []
    metrics = pl.read_parquet(replayed / "metrics.parquet")
    for metric in KEY_ALERT_METRICS:
        for mark in page.marks[f"arms:{metric}"]:
            value = metrics.filter(candidate=mark["data-label"], unit="all", metric=metric)["value"].item()
            assert float(mark["data-value"]) == pytest.approx(value, rel=1e-5)
    sweep = pl.read_parquet(replayed / "sweep.parquet")
    points = [m for m in page.marks["tradeoff"] if m.get("class") == "sweep-point"]
    assert [float(p["data-x"]) for p in points] == pytest.approx(sweep["alerts_per_patient_day"].to_list(), rel=1e-5)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_report_writes_its_tables_as_parquet_or_csv(replayed: Path, tmp_path: Path, fmt: str) -> None:
    tables = tmp_path / "tables"
    result = CliRunner().invoke(
        app, ["report", str(replayed), "--out", str(tmp_path / "r.html"), "--tables", str(tables), "--format", fmt]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tables.iterdir()) == sorted(
        f"{n}.{fmt}" for n in ("summary", "metrics", "differences", "sweep")
    )
    read = pl.read_csv if fmt == "csv" else pl.read_parquet
    summary = read(tables / f"summary.{fmt}")
    assert summary.filter(unit="all")["stays"].item() == int(STAYS)


def test_the_report_refuses_an_unknown_table_format(replayed: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["report", str(replayed), "--out", str(tmp_path / "r.html"), "--tables", str(tmp_path), "--format", "xls"]
    )
    assert result.exit_code != 0
    assert "choose parquet or csv" in result.output


def test_sweep_alone_recommends_a_threshold_for_a_budget(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "physionet2019" / "training_setA.tar.gz"
    result = CliRunner().invoke(
        app,
        [
            "sweep", str(data), "--policy", "deterioration", "--out", str(tmp_path), "--budget", "3",
            "--grid", "0.05,0.3", "--stays", "20", "--workers", "1", "--bootstrap", "20", "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = pl.read_parquet(tmp_path / "sweep.parquet")
    assert written["policy"].unique().to_list() == ["deterioration"]
    expected = recommend(written, 3.0)
    assert expected.reason in result.output
    assert written.filter("recommended")["threshold"].to_list() == ([expected.threshold] if expected.threshold else [])
