"""`cdsctl replay`: history through the live model and policies on a simulated clock, written as Parquet tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Replay history through live and candidate policies and evaluate them.")


@app.command("replay")
def replay_command(
    data: Annotated[Path, typer.Argument(help="PhysioNet 2019 stays: a directory, .zip or .tar.gz of .psv files.")],
    live: Annotated[str, typer.Option(help="The live policy: bundled name or YAML path, optionally @THRESHOLD.")],
    out: Annotated[Path, typer.Option(help="Folder for the Parquet tables.")],
    candidate: Annotated[
        list[str] | None, typer.Option(help="A candidate policy (repeatable), POLICY[@THRESHOLD].")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Model threshold for arms that name none (default: the model card's).")
    ] = None,
    model: Annotated[str, typer.Option(help="Registry model id.")] = "sepsis-hgb",
    workers: Annotated[int | None, typer.Option(min=1, help="Processes for the policy pass (default: all cores).")] = (
        None
    ),
    bootstrap: Annotated[int, typer.Option(min=10, help="Bootstrap draws of stays for the 95% intervals.")] = 200,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Score every row once, decide each stay hour by hour per policy, and write rows, alerts, metrics, differences."""
    from scoring.model.registry import ModelRegistry
    from shadow.candidates import parse_candidate
    from shadow.replay import ALL_UNITS, replay, write_outputs

    loaded = ModelRegistry().load(model)
    default = threshold if threshold is not None else loaded.card.threshold
    arms = [parse_candidate(live, default, name=f"live:{live}")]
    arms += [parse_candidate(spec, default, name=f"candidate:{spec}") for spec in candidate or []]
    result = replay(data, loaded, arms, workers=workers, bootstrap=bootstrap, progress=progress)
    for path in write_outputs(result, out):
        typer.echo(f"wrote {path}")
    summary = result.metrics.filter(unit=ALL_UNITS)
    for row in summary.iter_rows(named=True):
        typer.echo(f"{row['candidate']:<40} {row['metric']:<30} {row['value']:.4f} [{row['lo']:.4f}, {row['hi']:.4f}]")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    typer.echo(f"{len(result.data.starts)} stays, {result.data.rows} rows: {timing}")
