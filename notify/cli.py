"""Operator commands: `worker` runs timers and the outbox; `outbox dead-letters` lists failed messages and
`outbox retry ID` queues one again. `register` mounts them on the `cdsctl` app with the lead's configuration."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

import typer

from notify.dead_letters import list_dead_letters, retry_dead_letter
from notify.port import TimerHandler
from notify.settings import NotifySettings
from notify.unit_of_work import SqlNotifyUnitOfWork
from notify.worker import build_worker, run_until_signalled
from store.db import make_engine
from store.migrate import is_current


@dataclass(frozen=True)
class NotifyRuntime:
    """What the commands need from the application: where the database is, the settings and the timer handlers."""

    database_url: str
    settings: NotifySettings
    handlers: Mapping[str, TimerHandler] = field(default_factory=dict)


def register(app: typer.Typer, load: Callable[[], NotifyRuntime]) -> None:
    """Add `worker` and the `outbox` group to `app`; `load` is called only when a command runs."""
    outbox_app = typer.Typer(help="The outbox of outbound messages: dead letters and retries.", no_args_is_help=True)
    app.add_typer(outbox_app, name="outbox")

    @app.command("worker")
    def worker() -> None:
        """Fire due timers and deliver the outbox until SIGTERM or SIGINT (then finish the row in hand)."""
        runtime = load()
        engine = make_engine(runtime.database_url)
        try:
            if not is_current(engine):
                typer.echo("the database schema is not current: run `cdsctl db upgrade` first", err=True)
                raise typer.Exit(code=1)
            run_until_signalled(build_worker(engine, runtime.settings, runtime.handlers))
        finally:
            engine.dispose()

    @outbox_app.command("dead-letters")
    def dead_letters(
        limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, oldest first.")] = 100,
    ) -> None:
        """List messages that failed every attempt (never their content, which can hold clinical details)."""
        engine = make_engine(load().database_url)
        try:
            items = list_dead_letters(lambda: SqlNotifyUnitOfWork(engine), limit=limit)
        finally:
            engine.dispose()
        if not items:
            typer.echo("no dead letters")
            return
        typer.echo("id\tchannel\ttarget\tattempts\tlast_error\tcreated_at")
        for item in items:
            created = item.created_at.isoformat(timespec="seconds")
            typer.echo(f"{item.id}\t{item.channel}\t{item.target}\t{item.attempts}\t{item.last_error}\t{created}")

    @outbox_app.command("retry")
    def retry(
        item_id: Annotated[int, typer.Argument(help="The dead letter's id, as `outbox dead-letters` lists it.")],
        operator: Annotated[str | None, typer.Option(help="Who retries, for the audit log (default: $USER).")] = None,
    ) -> None:
        """Queue a dead letter again with a fresh attempt budget; the retry is audited."""
        engine = make_engine(load().database_url)
        try:
            item = retry_dead_letter(
                lambda: SqlNotifyUnitOfWork(engine), item_id, operator=f"operator:{operator or getpass.getuser()}"
            )
        finally:
            engine.dispose()
        if item is None:
            typer.echo(f"outbox message {item_id} is not a dead letter", err=True)
            raise typer.Exit(code=1)
        typer.echo(f"outbox message {item_id} queued again")
