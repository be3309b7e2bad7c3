"""`cdsctl score BUNDLE.json`: the risk output of every bundled scorer for a Bundle, as a table or as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from cdsctl.cli import app
from tests.e2e.test_sepsis_service import sepsis_request

AS_OF = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _bundle(tmp_path: Path) -> Path:
    prefetch = sepsis_request(AS_OF)["prefetch"]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": prefetch["patient"]},
            {"resource": prefetch["encounter"]},
            *prefetch["observations"]["entry"],
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    return path


def test_score_prints_every_scorers_output_as_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["score", str(_bundle(tmp_path)), "--as-of", AS_OF.isoformat(), "--format", "json"]
    )

    assert result.exit_code == 0, result.output
    outputs = {o["scorer"]: o for o in json.loads(result.output)}
    assert set(outputs) == {"news2", "qsofa", "sirs", "sepsis-hgb"}
    # RR 25.1 -> 3, SBP 97.1 -> 2, HR 113.1 -> 2, T 39.7 -> 2: 9, with SpO2, air/oxygen and consciousness missing.
    assert (outputs["news2"]["score"], outputs["news2"]["band"]) == (9.0, "high")
    assert outputs["news2"]["missing"] == ["spo2", "oxygen_therapy", "consciousness"]
    assert 0.0 <= outputs["sepsis-hgb"]["score"] <= 1.0


def test_score_prints_a_readable_table_with_the_explanation(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["score", str(_bundle(tmp_path)), "--as-of", AS_OF.isoformat()])

    assert result.exit_code == 0, result.output
    assert "news2" in result.output and "high" in result.output
    assert "resp_rate: 25.1 /min" in result.output


def test_score_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text("not json")

    result = CliRunner().invoke(app, ["score", str(path)])

    assert result.exit_code == 2
    assert "not a JSON document" in result.output
