"""The notify worker: a loop that fires due timers and delivers the outbox until told to stop, as its own process
(`cdsctl worker`) or as a background thread inside `cdsctl serve`."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notify.channels.fhir import FhirCommunicationChannel
from notify.channels.http import make_client
from notify.channels.webhook import WebhookChannel
from notify.dispatcher import OutboxDispatcher
from notify.port import Channel, ChannelName, Clock, TimerHandler, system_clock
from notify.settings import NotifySettings
from notify.timer_runner import TimerRunner
from notify.unit_of_work import SqlNotifyUnitOfWork

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    # Host and pid say where a lease came from; the random part keeps two workers in one process apart.
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class Worker:
    timers: TimerRunner
    dispatcher: OutboxDispatcher
    poll_interval: float
    stop_event: threading.Event = field(default_factory=threading.Event)
    on_close: Callable[[], None] | None = None

    def run_once(self) -> int:
        """One pass: fire due timers, then deliver due messages; returns how many were attempted."""
        # Timers first: a timer that fires usually enqueues a message, which this same pass can then deliver.
        attempted = self.timers.run_batch(self.stop_event)
        return attempted + self.dispatcher.run_batch(self.stop_event)

    def run(self) -> None:
        """Loop until `stop()`. A pass that found work is followed at once by another; an idle one waits."""
        log.info("notify worker started")
        while not self.stop_event.is_set():
            try:
                busy = self.run_once() > 0
            except Exception as error:  # a database outage must not end the worker; it retries
                log.error("notify worker pass failed with %s; retrying after the poll interval", type(error).__name__)
                busy = False
            if not busy:
                self.stop_event.wait(self.poll_interval)
        log.info("notify worker stopped")

    def stop(self) -> None:
        """Ask the loop to stop: the row in hand is finished, claimed rows not yet started are released."""
        self.stop_event.set()

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()


def build_worker(
    target: Engine | sessionmaker[Session],
    settings: NotifySettings,
    handlers: Mapping[str, TimerHandler],
    *,
    channels: Mapping[str, Channel] | None = None,
    worker_id: str | None = None,
    clock: Clock = system_clock,
) -> Worker:
    """A worker with the real channels built from `settings` (or the given `channels`, for tests)."""
    worker_id = worker_id or default_worker_id()
    client: httpx.Client | None = None
    if channels is None:
        client = make_client(settings)
        channels = {
            ChannelName.WEBHOOK: WebhookChannel(settings.webhooks, client, clock=clock),
            ChannelName.FHIR_COMMUNICATION: FhirCommunicationChannel(settings.fhir_servers, client, clock=clock),
        }

    def unit_of_work() -> SqlNotifyUnitOfWork:
        return SqlNotifyUnitOfWork(target, clock=clock)

    lease, batch = settings.lease, settings.batch_size
    return Worker(
        timers=TimerRunner(
            unit_of_work,
            handlers,
            worker_id=worker_id,
            lease=lease,
            backoff=settings.timer_backoff,
            batch_size=batch,
            clock=clock,
        ),
        dispatcher=OutboxDispatcher(
            unit_of_work,
            channels,
            worker_id=worker_id,
            lease=lease,
            backoff=settings.backoff,
            batch_size=batch,
            clock=clock,
        ),
        poll_interval=settings.poll_interval_seconds,
        on_close=None if client is None else client.close,
    )


def run_until_signalled(worker: Worker) -> None:
    """Run in the foreground (`cdsctl worker`) until SIGTERM or SIGINT, then stop gracefully."""
    with _stop_on_signals(worker):
        try:
            worker.run()
        finally:
            worker.close()


@dataclass
class BackgroundWorker:
    """A worker on a daemon thread, for `cdsctl serve`'s embedded default."""

    worker: Worker
    thread: threading.Thread

    def stop(self, timeout: float | None = None) -> bool:
        """Stop and wait up to `timeout` seconds; True when the thread has ended."""
        self.worker.stop()
        self.thread.join(timeout)
        stopped = not self.thread.is_alive()
        if stopped:
            self.worker.close()
        return stopped


def start_in_background(worker: Worker) -> BackgroundWorker:
    # A daemon thread, so a stop that times out cannot hold the process open; leases cover what it had in hand.
    thread = threading.Thread(target=worker.run, name="notify-worker", daemon=True)
    thread.start()
    return BackgroundWorker(worker, thread)


@contextmanager
def _stop_on_signals(worker: Worker) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        # Signal handlers can only be installed from the main thread; elsewhere the caller stops the worker.
        yield
        return

    def _handle(signum: int, _frame: FrameType | None) -> None:
        log.info("notify worker received %s; finishing the row in hand", signal.Signals(signum).name)
        worker.stop()

    previous = {signum: signal.signal(signum, _handle) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
