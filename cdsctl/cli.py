"""`cdsctl`: the one entry point for operators and informaticists."""

from __future__ import annotations

from typing import Annotated

import typer

from cdsctl.feedback_cli import app as feedback_app
from cdsctl.score import score as score_command
from cdsctl.settings import get_settings
from notify import cli as notify_cli
from notify.cli import NotifyRuntime
from notify.handlers.live import live_handlers
from policy.cli import app as policy_app
from scoring.model import cli as model_cli
from shadow.cli import replay_command, report_command, sweep_command
from store.audit_cli import app as audit_app

app = typer.Typer(
    name="cdsctl", help="cds-control-plane: clinical decision support control plane.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema: migrations on SQLite or PostgreSQL.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit", help="The append-only audit log: verify its hash chain.")
app.add_typer(policy_app, name="policy", help="Validate policies and run their case tables on a simulated clock.")
app.add_typer(feedback_app, name="feedback", help="Clinicians' feedback: the report and threshold advice.")
# `cdsctl worker` and `cdsctl outbox ...`: timers and outbound delivery.
notify_cli.register(
    app,
    lambda: NotifyRuntime(
        database_url=get_settings().resolved_database_url,
        settings=get_settings().notify,
        handlers=live_handlers(get_settings().notify),
    ),
)
# Model commands sit at the top level: `cdsctl train DATA`, `cdsctl predict DATA --out DIR`.
app.command("train")(model_cli.train)
app.command("predict")(model_cli.predict)
app.command("score")(score_command)
app.command("replay")(replay_command)
app.command("sweep")(sweep_command)
app.command("report")(report_command)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: CDS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: CDS_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the CDS Hooks service."""
    import uvicorn

    from cdsctl.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(
        "cdsctl.bootstrap:create_app_from_environment",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the configured database."""
    from store.migrate import current, upgrade

    url = get_settings().resolved_database_url
    upgrade(url)
    typer.echo(f"database at revision {current(url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision and whether it is up to date."""
    from store.migrate import current, is_current

    url = get_settings().resolved_database_url
    state = "up to date" if is_current(url) else "behind: run `cdsctl db upgrade`"
    typer.echo(f"{current(url)} ({state})")


if __name__ == "__main__":
    app()
