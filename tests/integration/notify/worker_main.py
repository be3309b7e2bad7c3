"""A worker in its own process, started through `notify.cli` as `cdsctl worker` would be, for the tests that kill it
or ask it to shut down. Usage: python -m tests.integration.notify.worker_main DATABASE_URL WEBHOOK_URL SECRET"""

from __future__ import annotations

import sys

import typer

from notify.cli import NotifyRuntime, register
from notify.settings import NotifySettings, WebhookTarget

LEASE_SECONDS = 1.5


def main(database_url: str, webhook_url: str, secret: str) -> None:
    settings = NotifySettings(
        webhooks={"ops": WebhookTarget(url=webhook_url, secret=secret)},  # type: ignore[arg-type]
        backoff_base_seconds=0.005,
        backoff_cap_seconds=0.04,
        poll_interval_seconds=0.01,
        lease_seconds=LEASE_SECONDS,
        connect_timeout_seconds=0.2,
        read_timeout_seconds=1.0,
        batch_size=10,
    )
    app = typer.Typer()
    register(app, lambda: NotifyRuntime(database_url=database_url, settings=settings))
    app(["worker"])


if __name__ == "__main__":
    main(*sys.argv[1:4])
