"""`cdsctl feedback advise` on a real database and a replay folder: the threshold table and the candidate."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from cdsctl.cli import app as cli
from store import migrate
from tests.unit.feedback.test_advice import replay_rows


def test_advise_names_a_candidate_from_the_replayed_labels(database_url: str, tmp_path: Path) -> None:
    migrate.upgrade(database_url)
    replay = tmp_path / "replay"
    replay.mkdir()
    replay_rows().write_parquet(replay / "rows.parquet")
    table = tmp_path / "advice.csv"

    result = CliRunner().invoke(
        cli,
        ["feedback", "advise", "--replay", str(replay), "--current", "0.1", "--out", str(table),
         "--database-url", database_url],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    written = pl.read_csv(table)
    # The highest grid threshold that still catches stay A's event (scores 0.35 before onset) is at most 0.35.
    candidate = float(result.stdout.split("candidate ", 1)[1].split(" ", 1)[0])
    assert 0.1 < candidate <= 0.35
    assert written.filter(pl.col("threshold") == candidate)["missed_events"].item() == 0


def test_advise_without_a_replay_suggests_nothing(database_url: str) -> None:
    migrate.upgrade(database_url)

    result = CliRunner().invoke(cli, ["feedback", "advise", "--current", "0.1", "--database-url", database_url])

    assert result.exit_code == 0, result.output
    assert "no replayed labels" in result.stdout
