"""The real server with its in-process worker: a hook call that escalates arms the ladder, and when a rung comes due
the server itself delivers it by signed webhook, once. The rung is brought due by moving its timer's due time
back in the database, since the server runs on the wall clock and the rung is 15 minutes away."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.pool import NullPool

from store.tables import AuditRow, TimerRow
from tests.e2e.conftest import RunningServer, served
from tests.integration.notify.live import HIGH, hook_request
from tests.integration.notify.receivers import WebhookReceiver

SECRET = "e2e-webhook-secret"
SERVICE = "/cds-services/deterioration-news2"


@pytest.fixture(scope="module")
def receiver(module_database_url: str) -> Iterator[WebhookReceiver]:
    # One per backend's server (the database parameter), so each test sees only its own server's deliveries.
    server = WebhookReceiver(SECRET)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver
) -> Iterator[RunningServer]:
    tmp_path = tmp_path_factory.mktemp("server")
    notify = {
        "webhooks": {"ops": {"url": receiver.url, "secret": SECRET}},
        "routes": {"pager": {"channel": "webhook", "target": "ops"}},
        # On for PostgreSQL too, where the default leaves delivery to `cdsctl worker`.
        "run_in_process": True,
        "poll_interval_seconds": 0.1,
    }
    extra = {"CDS_NOTIFY": json.dumps(notify)}
    with served(module_database_url, tmp_path, salt="e2e-escalation-salt", extra_env=extra) as running:
        yield running


def test_the_served_in_process_worker_delivers_a_due_rung_once_by_signed_webhook(
    server: RunningServer, receiver: WebhookReceiver
) -> None:
    answer = httpx.post(f"{server.base_url}{SERVICE}", json=hook_request("p-e2e", datetime.now(UTC), HIGH), timeout=30)
    assert [card["indicator"] for card in answer.json()["cards"]] == ["critical"]
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            keys = connection.scalars(select(TimerRow.key).where(TimerRow.kind == "escalation-step")).all()
            assert len(keys) == 2, "the charge nurse's and the rapid response team's rungs are armed"
            charge_nurse = next(key for key in keys if key.endswith(":1"))
            moved = connection.execute(
                update(TimerRow)
                .where(TimerRow.key == charge_nurse)
                .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            assert moved.rowcount == 1
        deadline = time.monotonic() + 60
        while not receiver.processed() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # room for a wrong second delivery to show up
        with engine.connect() as connection:
            outcomes = connection.scalars(select(AuditRow.payload).where(AuditRow.kind == "escalation-step")).all()
    finally:
        engine.dispose()

    assert receiver.processed() == {charge_nurse}
    [arrival] = receiver.arrivals
    assert arrival.signed and json.loads(arrival.body)["role"] == "charge-nurse"
    assert [o["outcome"] for o in outcomes] == ["notified"]
