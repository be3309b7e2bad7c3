"""`cdsctl audit ...`: operator checks of the hash-chained audit log on the configured database."""

from __future__ import annotations

from typing import Annotated

import typer

from cdsctl.settings import get_settings
from store.db import make_engine
from store.port import ChainCheck
from store.repository import SqlUnitOfWork

app = typer.Typer(help="The append-only audit log: verify its hash chain.", no_args_is_help=True)


@app.callback()
def _audit() -> None:
    # A callback keeps `verify` a named subcommand even while it is the only one.
    pass


@app.command()
def verify(
    database_url: Annotated[
        str | None, typer.Option(help="Database to check (default: the configured CDS_DATABASE_URL).")
    ] = None,
) -> None:
    """Walk the whole audit chain; exit 1 naming the first record that was edited, removed or reordered."""
    check = _verify(database_url or _configured_url())
    typer.echo(f"checked {check.checked} audit records")
    if check.ok:
        typer.echo(f"head seq {check.head_seq} hash {check.head_hash}")
        return
    # Only sequence numbers and hashes are printed: a record's payload may carry clinical detail.
    typer.echo(f"audit chain broken at seq {check.bad_seq}: record {check.fault}", err=True)
    typer.echo(f"last good record: seq {check.head_seq} hash {check.head_hash}", err=True)
    raise typer.Exit(code=1)


def _configured_url() -> str:
    return get_settings().resolved_database_url


def _verify(database_url: str) -> ChainCheck:
    engine = make_engine(database_url)
    try:
        with SqlUnitOfWork(engine) as uow:
            return uow.repo.verify_audit_chain()
    finally:
        engine.dispose()
