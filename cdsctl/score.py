"""`cdsctl score BUNDLE.json`: every scorer's risk output for a FHIR Bundle, for informaticists and comparisons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from clinical.normalise import normalise_resources
from scoring.port import RiskOutput, Scorer


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def load_scorers() -> list[Scorer]:
    """The same scorers the service runs: the bundled rule sets and the latest version of every registered model."""
    from scoring.model.scorer import latest_model_scorers
    from scoring.rules import load_rule_scorers

    return [*load_rule_scorers(), *latest_model_scorers()]


def output_document(output: RiskOutput) -> dict[str, Any]:
    return {
        "scorer": output.scorer_id,
        "version": output.scorer_version,
        "score": output.score,
        "band": output.band,
        "partial": output.partial,
        "missing": list(output.missing),
        "as_of": output.as_of.isoformat(),
        "input_hash": output.input_hash,
        "explanation": [{"input": c.feature, "points": c.points, "detail": c.detail} for c in output.explanation],
    }


def score(
    bundle: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A FHIR R4 Bundle or resource (JSON).")],
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="The time to score at (ISO 8601, UTC if no zone); default now.")
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="A readable table or JSON.")] = (
        OutputFormat.TABLE
    ),
    strict: Annotated[bool, typer.Option(help="Validate every resource with fhir.resources first.")] = False,
) -> None:
    """Print the risk output of every scorer for the patient in BUNDLE."""
    from cdsctl.settings import get_settings

    try:
        resource = json.loads(bundle.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{bundle} is not a JSON document: {exc}") from exc
    moment = (as_of or datetime.now(UTC)).replace(tzinfo=(as_of.tzinfo if as_of and as_of.tzinfo else UTC))
    context = normalise_resources(
        [resource], validation="strict" if strict else "fast", now=moment, salt=get_settings().pseudonym_salt
    )
    outputs = [output for scorer in load_scorers() for output in scorer.score(context, moment)]
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps([output_document(o) for o in outputs], indent=2))
        return
    typer.echo(
        f"scored at {moment.isoformat()}; {len(context.observations)} observations, {len(context.issues)} issues"
    )
    typer.echo(f"{'scorer':<12} {'version':<22} {'score':>8} {'band':<12} inputs")
    for output in outputs:
        shown = "-" if output.score is None else f"{output.score:.4g}"
        missing = f"missing {', '.join(output.missing)}" if output.missing else "complete"
        typer.echo(f"{output.scorer_id:<12} {output.scorer_version:<22} {shown:>8} {output.band:<12} {missing}")
        for line in output.explanation[:6]:
            typer.echo(f"    {line.feature}: {line.detail} ({line.points:+g})")
