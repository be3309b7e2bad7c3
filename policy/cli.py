"""`cdsctl policy`: validate a policy document and run its case file on a simulated clock."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policy.cases import format_table, load_cases, run_cases
from policy.document import PolicyValidationError, load_policy
from policy.engine import RoutedPolicy

app = typer.Typer(help="Policies: validate documents and run their case files.", no_args_is_help=True)

_Existing = typer.Argument(exists=True, dir_okay=False, readable=True)


def _load(path: Path) -> RoutedPolicy:
    try:
        return RoutedPolicy(load_policy(path))
    except PolicyValidationError as exc:
        typer.echo(f"{path}: refused, {len(exc.errors)} error(s)", err=True)
        for error in exc.errors:
            typer.echo(f"  {error}", err=True)
        raise typer.Exit(1) from None


@app.command()
def validate(policy: Annotated[Path, _Existing]) -> None:
    """Check a policy document; print its id, version and content hash, or every error with its path."""
    routed = _load(policy)
    document = routed.document
    typer.echo(f"{policy}: valid policy {document.id} version {document.version}")
    typer.echo(f"content hash {routed.content_hash}")


@app.command("test")
def test_cases(
    policy: Annotated[Path, _Existing],
    cases: Annotated[Path, _Existing],
) -> None:
    """Run a case file against a policy; print a table and exit 1 if any case fails."""
    routed = _load(policy)
    try:
        loaded = load_cases(cases)
        results = run_cases(routed, loaded)
    except PolicyValidationError as exc:
        typer.echo(f"{cases}: refused", err=True)
        for error in exc.errors:
            typer.echo(f"  {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(format_table(results))
    if not all(r.passed for r in results):
        raise typer.Exit(1)
