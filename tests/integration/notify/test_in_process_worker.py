"""`cdsctl serve`'s in-process worker: the app's lifespan starts it beside the service and stops it on shutdown, and
it delivers what the live path schedules (here on a fake clock shared by the hook pipeline and the worker)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cdsctl.bootstrap import build_container, create_app_from_container
from cdsctl.settings import Settings
from notify.settings import NotifySettings
from store import migrate
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.live import HIGH, hook_request, patient_key, service_settings, settings_for
from tests.integration.notify.receivers import WebhookReceiver

SERVICE = "/cds-services/deterioration-news2"


def _notify_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "notify-worker" and t.is_alive())


def test_the_worker_runs_in_process_for_the_embedded_database_and_not_beside_postgresql() -> None:
    assert Settings(database_url="").worker_in_process
    assert Settings(database_url="sqlite:///var/other.sqlite3").worker_in_process
    assert not Settings(database_url="postgresql+psycopg://cds@db:5432/cds").worker_in_process
    forced = NotifySettings(run_in_process=True)
    assert Settings(database_url="postgresql+psycopg://cds@db:5432/cds", notify=forced).worker_in_process
    assert not Settings(database_url="", notify=NotifySettings(run_in_process=False)).worker_in_process


def test_the_in_process_worker_delivers_a_ladder_rung_and_stops_with_the_app(
    database_url: str, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    migrate.upgrade(database_url)
    clock = FakeClock()
    settings = service_settings(database_url, tmp_path, settings_for(receiver.url, run_in_process=True))
    container = build_container(settings, clock=clock)
    before = _notify_threads()
    try:
        with TestClient(create_app_from_container(container)) as client:
            assert _notify_threads() == before + 1
            answer = client.post(SERVICE, json=hook_request("p-served", clock(), HIGH)).json()
            assert [card["indicator"] for card in answer["cards"]] == ["critical"]
            clock.advance(15 * 60)
            deadline = time.monotonic() + 60
            while not receiver.processed() and time.monotonic() < deadline:
                time.sleep(0.05)
        assert _notify_threads() == before, "the app's shutdown stopped its worker"
    finally:
        container.engine.dispose()

    [arrival] = receiver.arrivals
    body = json.loads(arrival.body)
    assert arrival.signed and (body["role"], body["patient"]) == ("charge-nurse", patient_key("p-served"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_worker_starts_when_the_setting_turns_it_off(database_url: str, tmp_path: Path) -> None:
    migrate.upgrade(database_url)
    container = build_container(service_settings(database_url, tmp_path, NotifySettings(run_in_process=False)))
    before = _notify_threads()
    try:
        with TestClient(create_app_from_container(container)):
            assert _notify_threads() == before
    finally:
        container.engine.dispose()


class _SlowShadow:
    """Stands in for the live shadow runner: its queue empties only when drained."""

    def __init__(self) -> None:
        self.drained = False

    def drain(self, timeout: float = 10.0) -> bool:
        self.drained = True
        return True


def test_shutdown_lets_queued_shadow_work_finish(database_url: str, tmp_path: Path) -> None:
    migrate.upgrade(database_url)
    settings = service_settings(database_url, tmp_path, NotifySettings(run_in_process=False))
    shadow = _SlowShadow()
    container = dataclasses.replace(build_container(settings), shadow=shadow)
    try:
        with TestClient(create_app_from_container(container)):
            assert not shadow.drained
        assert shadow.drained
    finally:
        container.engine.dispose()
