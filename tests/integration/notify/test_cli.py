"""The operator commands as `cdsctl` mounts them: list dead letters (without their content), retry one (audited)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from notify.cli import NotifyRuntime, register
from notify.port import NotifyAuditKind, OutboxState
from notify.settings import NotifySettings
from notify.unit_of_work import SqlNotifyUnitOfWork
from store import outbox as outbox_store
from tests.integration.notify.conftest import webhook


def _app(database_url: str) -> typer.Typer:
    app = typer.Typer()
    register(app, lambda: NotifyRuntime(database_url=database_url, settings=NotifySettings()))
    return app


def _dead_letter(engine: Engine, key: str) -> int:
    now = datetime.now(UTC)
    with SqlNotifyUnitOfWork(engine) as uow:
        uow.outbox.enqueue(webhook(key, patient="secret-patient-detail"))
        [item] = outbox_store.claim_due(
            uow.session, now=now + timedelta(seconds=1), worker_id="w", limit=1, lease=timedelta(seconds=30)
        )
        outbox_store.mark_dead(uow.session, item.id, "w", error="http-503")
        uow.commit()
    return item.id


def test_operators_list_dead_letters_without_their_content_and_retry_one(
    database_url: str, migrated_engine: Engine
) -> None:
    cli = CliRunner()
    app = _app(database_url)
    assert cli.invoke(app, ["outbox", "dead-letters"]).output.strip() == "no dead letters"
    item_id = _dead_letter(migrated_engine, "alert-cli")

    listed = cli.invoke(app, ["outbox", "dead-letters"])
    assert listed.exit_code == 0
    assert f"{item_id}\twebhook\tops\t1\thttp-503" in listed.output
    assert "secret-patient-detail" not in listed.output

    retried = cli.invoke(app, ["outbox", "retry", str(item_id), "--operator", "bob"])
    assert retried.exit_code == 0, retried.output
    again = cli.invoke(app, ["outbox", "retry", str(item_id), "--operator", "bob"])
    assert again.exit_code == 1

    with SqlNotifyUnitOfWork(migrated_engine) as uow:
        item = outbox_store.get(uow.session, item_id)
        [record] = uow.repo.audit_records()
    assert item is not None and (item.state, item.attempts) == (OutboxState.PENDING, 0)
    assert (record.kind, record.actor) == (NotifyAuditKind.OUTBOX_RETRIED, "operator:bob")


def test_the_worker_refuses_to_start_on_a_database_that_is_not_migrated(database_url: str) -> None:
    result = CliRunner().invoke(_app(database_url), ["worker"])
    assert result.exit_code == 1
    assert "cdsctl db upgrade" in result.output
