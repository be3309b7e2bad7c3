"""`cdsctl model ...`: train a registry model from PhysioNet stays, and write challenge-style predictions per stay."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from tqdm import tqdm  # type: ignore[import-untyped]  # no type information shipped

from scoring.features.grid import grid_from_table
from scoring.model.registry import BUNDLED_MODELS, ModelRegistry
from scoring.model.scorer import score_grid

app = typer.Typer(help="Train and run the bundled sepsis model.", no_args_is_help=True)

DataArg = Annotated[Path, typer.Argument(help="A folder, .zip or .tar.gz of PhysioNet 2019 .psv stays.", exists=True)]


@app.command()
def train(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", help="Registry root to write <model-id>/<version>/ into.")],
    seed: Annotated[int, typer.Option(help="Seed of the patient-level split and the model.")] = 0,
    model_id: Annotated[str, typer.Option(help="Registry id of the model.")] = "sepsis-hgb",
    version: Annotated[str, typer.Option(help="Version of the new registry entry.")] = "1.0.0",
    max_iter: Annotated[int, typer.Option(help="Most boosting iterations (early stopping usually ends sooner).")] = 400,
    threads: Annotated[int | None, typer.Option(help="OpenMP threads for fitting (default: all cores).")] = None,
    node_visit_budget: Annotated[
        float | None,
        typer.Option(
            help="Most mean split tests a validation row may meet over all trees (default: 120, NODE_VISIT_BUDGET)."
        ),
    ] = None,
) -> None:
    """Train, export to ONNX, check parity, choose the threshold and write a registry entry with its card."""
    # Imported here: scikit-learn and skl2onnx take seconds to import, and every other cdsctl command would pay them.
    from scoring.model.training import NODE_VISIT_BUDGET
    from scoring.model.training import train as train_model

    budget = NODE_VISIT_BUDGET if node_visit_budget is None else node_visit_budget
    result = train_model(
        data,
        out,
        seed=seed,
        model_id=model_id,
        version=version,
        max_iter=max_iter,
        threads=threads,
        node_visit_budget=budget,
    )
    card = result.card
    hp = card.hyperparameters
    typer.echo(f"wrote {result.directory} (threshold {card.threshold:.4f}, parity {result.parity_max_abs:.2g})")
    typer.echo(f"cost: {hp['iterations']} trees, {hp['node_visits_per_row']:.1f} node visits a row")
    for split, metrics in card.metrics.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k not in ("rows", "stays"))
        typer.echo(f"{split}: {shown}")


@app.command()
def predict(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for one .psv of predictions per stay.")],
    registry: Annotated[Path, typer.Option(help="Registry root.")] = BUNDLED_MODELS,
    model_id: Annotated[str, typer.Option(help="Registry id of the model.")] = "sepsis-hgb",
    version: Annotated[str | None, typer.Option(help="Model version (default: the latest).")] = None,
) -> None:
    """Score every hour of every stay in one batch and write `PredictedProbability|PredictedLabel` files."""
    from clinical.physionet import load_table  # imported here: only this command reads PhysioNet files

    model = ModelRegistry(registry).load(model_id, version)
    grid = grid_from_table(load_table(data))
    probabilities = score_grid(model, grid)
    labels = probabilities >= model.card.threshold
    out.mkdir(parents=True, exist_ok=True)
    ends = np.append(grid.starts[1:], len(probabilities))
    for stay_id, start, end in tqdm(
        zip(grid.stay_ids, grid.starts, ends, strict=True), total=len(grid.stay_ids), desc="writing", unit="stay"
    ):
        lines = ["PredictedProbability|PredictedLabel"]
        lines += [f"{p:.6f}|{int(label)}" for p, label in zip(probabilities[start:end], labels[start:end], strict=True)]
        (out / f"{stay_id}.psv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    typer.echo(f"wrote {len(grid.stay_ids)} prediction files to {out}")
