"""`cdsctl replay`: history through the live model and policies on a simulated clock, written as Parquet tables."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from scoring.model.registry import LoadedModel
    from shadow.candidates import Candidate
    from shadow.inputs import ReplayInput

app = typer.Typer(help="Replay history through live and candidate policies and evaluate them.")
BUDGET_HELP = "Alert budget (alerts per patient-day): recommend the threshold with the best event recall within it."
DATA_HELP = "PhysioNet 2019 stays (a directory, .zip or .tar.gz of .psv files) or FHIR (NDJSON, or Bundles)."
UNITS_HELP = "FHIR only: a CSV with columns patient,unit[,unit_type] naming each patient's unit."
GRID_HELP = "Sweep thresholds: 0.02,0.05,0.1 or start:stop:step (default: 12 score quantiles and the live one)."


@app.command("replay")
def replay_command(
    data: Annotated[Path, typer.Argument(help=DATA_HELP)],
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
    stays: Annotated[int | None, typer.Option(min=1, help="Only the first N stays by id (a quick look).")] = None,
    sweep: Annotated[bool, typer.Option(help="Also sweep the live policy's threshold (implied by --budget).")] = False,
    budget: Annotated[float | None, typer.Option(help=BUDGET_HELP)] = None,
    grid: Annotated[str | None, typer.Option(help=GRID_HELP)] = None,
    units: Annotated[Path | None, typer.Option(help=UNITS_HELP)] = None,
) -> None:
    """Score every row once, decide each stay hour by hour per policy, and write rows, alerts, metrics, differences."""
    from scoring.model.registry import ModelRegistry
    from shadow.candidates import parse_candidate
    from shadow.replay import ALL_UNITS, replay, write_outputs
    from shadow.report import run_facts, write_run
    from shadow.sweep import first_stays

    loaded = ModelRegistry().load(model)
    default = threshold if threshold is not None else loaded.card.threshold
    arms = [parse_candidate(live, default, name=f"live:{live}")]
    arms += [parse_candidate(spec, default, name=f"candidate:{spec}") for spec in candidate or []]
    ids = first_stays(data, stays) if stays else None
    result = replay(
        data, loaded, arms, workers=workers, bootstrap=bootstrap, progress=progress, stay_ids=ids, units=units
    )
    if not result.data.labelled:
        typer.echo("no outcome labels in the data: alert-burden metrics only (no precision, recall, utility)")
    for path in write_outputs(result, out):
        typer.echo(f"wrote {path}")
    typer.echo(f"wrote {write_run(out, run_facts(loaded.card, data, arms, bootstrap))}")
    if sweep or budget is not None:
        _sweep(result.data, loaded, arms[0], out, budget, grid, workers, bootstrap, progress)
    summary = result.metrics.filter(unit=ALL_UNITS)
    for row in summary.iter_rows(named=True):
        typer.echo(f"{row['candidate']:<40} {row['metric']:<30} {row['value']:.4f} [{row['lo']:.4f}, {row['hi']:.4f}]")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    typer.echo(f"{len(result.data.starts)} stays, {result.data.rows} rows: {timing}")


@app.command("sweep")
def sweep_command(
    data: Annotated[Path, typer.Argument(help="PhysioNet 2019 stays: a directory, .zip or .tar.gz of .psv files.")],
    policy: Annotated[str, typer.Option(help="The policy to sweep: bundled name or YAML path.")],
    out: Annotated[Path, typer.Option(help="Folder for sweep.parquet (a replay folder, for `cdsctl report`).")],
    budget: Annotated[float | None, typer.Option(help=BUDGET_HELP)] = None,
    grid: Annotated[str | None, typer.Option(help=GRID_HELP)] = None,
    model: Annotated[str, typer.Option(help="Registry model id.")] = "sepsis-hgb",
    workers: Annotated[int | None, typer.Option(min=1, help="Processes for the policy pass (default: all cores).")] = (
        None
    ),
    bootstrap: Annotated[int, typer.Option(min=10, help="Bootstrap draws for the alert-rate and recall CIs.")] = 200,
    stays: Annotated[int | None, typer.Option(min=1, help="Only the first N stays by id (a quick look).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Score every row once, replay one policy at each threshold of a grid, and recommend one for an alert budget."""
    from clinical.physionet import load_table
    from scoring.model.registry import ModelRegistry
    from shadow.candidates import parse_candidate
    from shadow.inputs import replay_input
    from shadow.replay import watched_kinds
    from shadow.sweep import first_stays

    loaded = ModelRegistry().load(model)
    arm = parse_candidate(policy, loaded.card.threshold, name=policy)
    table = load_table(data, first_stays(data, stays) if stays else None)
    scored = replay_input(table, loaded, watched_kinds([arm]))
    del table
    _sweep(scored, loaded, arm, out, budget, grid, workers, bootstrap, progress)


@app.command("report")
def report_command(
    replay_dir: Annotated[Path, typer.Argument(help="A `cdsctl replay` output folder.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write (one self-contained file).")],
    tables: Annotated[Path | None, typer.Option(help="Also write the report's tables into this folder.")] = None,
    table_format: Annotated[str, typer.Option("--format", help="Table format: parquet or csv.")] = "parquet",
) -> None:
    """Render a replay folder as one offline HTML report (tables, plots, method notes) and, optionally, its tables."""
    from shadow.report import TableFormat, write_report

    try:
        fmt = TableFormat(table_format)
    except ValueError:
        raise typer.BadParameter(f"{table_format!r}: choose parquet or csv", param_hint="--format") from None
    for path in write_report(replay_dir, out, tables, fmt):
        typer.echo(f"wrote {path}")


def _sweep(
    data: ReplayInput,
    loaded: LoadedModel,
    arm: Candidate,
    out: Path,
    budget: float | None,
    grid: str | None,
    workers: int | None,
    bootstrap: int,
    progress: bool,
) -> None:
    from shadow.sweep import default_grid, parse_grid, recommend, scorer_info, sweep, write_sweep

    thresholds = parse_grid(grid) if grid else default_grid(data.scores, keep=(arm.threshold,))
    name = arm.name.removeprefix("live:").partition("@")[0]
    frame = sweep(
        data,
        scorer_info(loaded.card),
        arm.document,
        thresholds,
        policy=name,
        workers=workers,
        bootstrap=bootstrap,
        progress=progress,
    )
    typer.echo(f"wrote {write_sweep(frame, budget, out)}")
    for row in frame.iter_rows(named=True):
        typer.echo(
            f"threshold {row['threshold']:<10g} alerts/patient-day {row['alerts_per_patient_day']:.3f}  "
            f"recall {row['event_recall']:.3f}  precision {row['alert_precision']:.3f}  "
            f"lead median {row['lead_time_median_h']:.1f} h"
        )
    if budget is not None:
        typer.echo(recommend(frame, budget).reason)
