"""A real worker process stopped the hard way (SIGKILL mid-delivery) and the polite way (SIGTERM): nothing is lost,
a killed delivery is repeated at most once, and a graceful stop repeats nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from notify.port import OutboxState
from notify.unit_of_work import SqlNotifyUnitOfWork
from notify.worker import build_worker, start_in_background
from store import outbox as outbox_store
from tests.integration.notify.conftest import SECRET, fast_settings, webhook
from tests.integration.notify.receivers import WebhookReceiver
from tests.integration.notify.worker_main import LEASE_SECONDS

REPO_ROOT = Path(__file__).resolve().parents[3]
COUNT = 30


def _start_worker(database_url: str, receiver: WebhookReceiver) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.notify.worker_main", database_url, receiver.url, SECRET],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _run_until(engine: Engine, receiver: WebhookReceiver, condition: Callable[[], bool]) -> None:
    """A second worker, in this process: the one that picks up what the stopped one left."""
    settings = fast_settings(receiver.url, lease_seconds=LEASE_SECONDS, connect_timeout_seconds=0.2)
    background = start_in_background(build_worker(engine, settings, {}))
    try:
        _wait_for(condition)
    finally:
        assert background.stop(timeout=10)


def _enqueue(engine: Engine) -> set[str]:
    keys = {f"alert-{n}" for n in range(COUNT)}
    with SqlNotifyUnitOfWork(engine) as uow:
        for key in sorted(keys):
            uow.outbox.enqueue(webhook(key))
        uow.commit()
    return keys


def _counts(engine: Engine) -> dict[OutboxState, int]:
    with SqlNotifyUnitOfWork(engine) as uow:
        return outbox_store.count_by_state(uow.session)


def test_a_worker_killed_mid_delivery_loses_nothing_and_repeats_a_delivery_at_most_once(
    database_url: str, migrated_engine: Engine, receiver: WebhookReceiver
) -> None:
    keys = _enqueue(migrated_engine)
    receiver.delay_seconds = 0.05
    first = _start_worker(database_url, receiver)
    try:
        _wait_for(lambda: len(receiver.arrivals) >= 3)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert _counts(migrated_engine)[OutboxState.DELIVERING] > 0  # the killed worker's claims are still leased

    _run_until(migrated_engine, receiver, lambda: receiver.processed() == keys)

    assert max(receiver.seen().values()) <= 2
    assert _counts(migrated_engine)[OutboxState.DELIVERED] == COUNT


def test_sigterm_finishes_the_message_in_hand_and_hands_the_rest_over_without_repeats(
    database_url: str, migrated_engine: Engine, receiver: WebhookReceiver
) -> None:
    keys = _enqueue(migrated_engine)
    receiver.delay_seconds = 0.05
    first = _start_worker(database_url, receiver)
    _wait_for(lambda: len(receiver.arrivals) >= 3)
    first.send_signal(signal.SIGTERM)
    assert first.wait(10) == 0

    counts = _counts(migrated_engine)
    # Nothing left leased: the next worker need not wait for a lease to run out.
    assert counts[OutboxState.DELIVERING] == 0
    assert counts[OutboxState.DELIVERED] == len(receiver.processed()) < COUNT

    _run_until(migrated_engine, receiver, lambda: receiver.processed() == keys)
    assert set(receiver.seen().values()) == {1}
