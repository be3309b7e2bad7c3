"""/metrics as an operator reads it: decisions by action and reason, feedback received, and the durable queues
(outbox depth, pending timers, how overdue the oldest one is) read from the database at scrape time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.security import SecuritySettings
from cdsctl.bootstrap import Container, build_container, create_app_from_container
from cdsctl.settings import Settings
from notify.port import ChannelName, OutboundMessage
from notify.settings import NotifySettings
from store import migrate, outbox, timers
from tests.hook_requests import vitals_call

SERVICE = "deterioration-news2"


@pytest.fixture(scope="module")
def container(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    migrate.upgrade(module_database_url)
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=module_database_url,
        hook_deadline_seconds=10,
        security=SecuritySettings(enabled=False),
        # No worker: the timers and messages these tests write must stay where they are.
        notify=NotifySettings(run_in_process=False),
    )
    built = build_container(settings)
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app_from_container(container)) as test_client:
        yield test_client


def _value(text: str, name: str, **labels: str) -> float:
    """The sample of `name` whose labels include `labels` (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


def test_a_surfaced_card_and_its_feedback_are_counted(client: TestClient) -> None:
    before = client.get("/metrics").text
    card = client.post(f"/cds-services/{SERVICE}", json=vitals_call("metrics-1")).json()["cards"][0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": datetime.now(UTC).isoformat()}
    assert client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [item]}).status_code == 200

    after = client.get("/metrics").text

    surfaced = {"service": SERVICE, "action": "surface"}
    assert _value(after, "cds_decisions_total", **surfaced) == _value(before, "cds_decisions_total", **surfaced) + 1
    overridden = {"source": "cds-hooks", "outcome": "overridden"}
    assert _value(after, "cds_feedback_total", **overridden) == _value(before, "cds_feedback_total", **overridden) + 1
    assert "metrics-1" not in after


def test_the_queue_gauges_show_what_waits_in_the_database(client: TestClient, container: Container) -> None:
    now = datetime.now(UTC)
    with Session(container.engine) as session:
        timers.schedule(session, "delay-due", "metrics:overdue", now - timedelta(minutes=5), {}, now=now)
        timers.schedule(session, "delay-due", "metrics:later", now + timedelta(hours=1), {}, now=now)
        for n in range(3):
            message = OutboundMessage(ChannelName.WEBHOOK, "ops", {"n": n}, f"metrics:{n}")
            outbox.enqueue(session, message, now=now)
        session.commit()

    text = client.get("/metrics").text

    assert _value(text, "cds_outbox_messages", state="pending") == 3
    assert _value(text, "cds_timers_pending") == 2
    assert 290 <= _value(text, "cds_timer_lag_seconds") < 3600
