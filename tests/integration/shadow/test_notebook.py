"""notebooks/tune_threshold.ipynb runs top to bottom on a slice of set A and leaves a report and a recommendation.

The code cells run in order in one namespace (the notebook needs no magics), with the slice's parameters set right
after the cell tagged `parameters`, as papermill would; Jupyter itself is not a project dependency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shadow.report import SECTIONS
from shadow.sweep import recommend
from tests.conftest import REPO_ROOT
from tests.unit.shadow.report_html import read_report

NOTEBOOK = REPO_ROOT / "notebooks" / "tune_threshold.ipynb"


def _cells() -> list[dict[str, Any]]:
    document = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert document["nbformat"] == 4
    return list(document["cells"])


def test_the_notebook_is_stored_without_outputs_and_has_one_parameters_cell() -> None:
    code = [c for c in _cells() if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1


def test_the_notebook_tunes_a_threshold_on_a_slice_of_set_a(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(NOTEBOOK.parent)  # where Jupyter starts a notebook's kernel
    parameters = {
        "DATA": shared_data / "physionet2019" / "training_setA.tar.gz",
        "STAYS": 200,
        "BUDGET": 2.5,
        "GRID": "0.03,0.07,0.15,0.3",
        "BOOTSTRAP": 20,
        "WORKERS": 1,
        "OUT": tmp_path / "out",
    }
    namespace: dict[str, Any] = {"__name__": "__notebook__"}
    for cell in _cells():
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}:{cell['id']}", "exec"), namespace)  # noqa: S102
        if "parameters" in cell["metadata"].get("tags", []):
            namespace.update(parameters)

    assert len(namespace["result"].data.starts) == 200
    sweep = pl.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert sweep["threshold"].to_list() == [0.03, 0.07, 0.15, 0.3]
    assert namespace["choice"] == recommend(sweep, 2.5)
    report = tmp_path / "out" / "report.html"
    assert read_report(report.read_text(encoding="utf-8")).sections == list(SECTIONS)
    assert {p.name for p in (tmp_path / "out" / "tables").iterdir()} >= {"metrics.parquet", "sweep.parquet"}
    assert namespace["choice"].threshold is not None  # and so the confirming comparison ran against live
    assert set(namespace["confirmed"]["metric"]) >= {"alerts_per_patient_day", "event_recall"}
