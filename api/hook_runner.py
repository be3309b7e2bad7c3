"""Runs the hook pipeline under the call's deadline: the EHR always gets an answer, never a 500.

If a scorer, the policy or the database fails, or the deadline passes, the answer is `{"cards": []}` with the
failure logged and counted. The pipeline keeps running in its worker thread after a timeout, so whatever it was
about to record is still written, not lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from api.catalog import ServiceDefinition
from api.metrics import HOOK_FAILURES, HOOK_LATENCY
from api.pipeline import HookCallInput, HookPipeline
from cdsctl.logs import get_logger

log = get_logger(__name__)

NO_CARDS: dict[str, Any] = {"cards": []}
# A hook thread takes no more calls into its batch once it has been working on it this long: the calls of a batch
# wait for each other's work before their one commit.
BATCH_SECONDS = 0.025


class InFlight:
    """The threads hook calls run on, and the calls still running, so that shutdown can let them finish recording
    instead of cutting them off.

    Calls queue for the threads; a thread that comes free takes every call waiting (up to `max_batch`) and the
    pipeline records them in one transaction (HookPipeline.handle_batch). An idle service answers each call alone,
    as it arrives; under load the calls that queued while the last batch ran share the next commit, the most
    expensive step of a call's recording. Hook work has threads of its own rather than the framework's shared pool:
    other blocking work in the process (token verification, feedback, admin calls) can never take the threads hook
    calls need.
    """

    def __init__(self, pipeline: HookPipeline, threads: int = 8, max_batch: int = 16) -> None:
        self._pipeline = pipeline
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._thread_count = threads
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, call: HookCallInput) -> asyncio.Future[dict[str, Any]]:
        """Queue `call` for a hook thread, in a copy of the caller's context (log bindings go along), tracked."""
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        call = dataclasses.replace(call, context=contextvars.copy_context())
        self._queue.put(_Queued(call, loop, future))
        self.track(future)
        return future

    def track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout_s: float) -> int:
        """Wait for running work; returns how many were still running when the time ran out. The threads are
        released afterwards (work still running finishes on them; nothing new is accepted)."""
        pending: set[asyncio.Future[Any]] = set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for _ in self._threads:
            self._queue.put(None)
        return len(pending)

    def _start(self) -> None:
        # On the first call rather than at wiring: an app that never serves a hook call has no threads to stop.
        with self._lock:
            while len(self._threads) < self._thread_count:
                thread = threading.Thread(target=self._work, name=f"hook-{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = _Batch(self._queue, first, self._max_batch)
            try:
                outcomes: list[Any] = self._pipeline.handle_batch(batch)
            except Exception as exc:  # the pipeline answers per call; this would be a fault of its own
                outcomes = [exc] * len(batch.taken)
            for queued, outcome in zip(batch.taken, outcomes, strict=True):
                queued.loop.call_soon_threadsafe(_settle, queued.future, outcome)
            if batch.stopping:
                return


class _Batch:
    """The calls a hook thread takes from the queue for one batch, as the pipeline asks for them.

    The next queued call is taken only once the one before it is worked out, and none once the batch's time is up:
    calls still queued go to whichever thread comes free first, and a slow call holds back only the calls already
    worked out beside it, not the whole queue."""

    def __init__(self, source: queue.SimpleQueue[_Queued | None], first: _Queued, max_calls: int) -> None:
        self._source = source
        self._first = first
        self._max_calls = max_calls
        self.taken: list[_Queued] = []
        self.stopping = False  # the shutdown marker was met: this batch is the thread's last

    def __iter__(self) -> Iterator[HookCallInput]:
        started = time.perf_counter()
        queued: _Queued | None = self._first
        while queued is not None:
            self.taken.append(queued)
            yield queued.call
            if len(self.taken) >= self._max_calls or time.perf_counter() - started > BATCH_SECONDS:
                return
            try:
                queued = self._source.get_nowait()
            except queue.Empty:
                return
            self.stopping = queued is None


@dataclasses.dataclass(frozen=True, slots=True)
class _Queued:
    call: HookCallInput
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[dict[str, Any]]


def _settle(future: asyncio.Future[dict[str, Any]], outcome: Any) -> None:
    if future.done():  # cancelled: the caller stopped waiting
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


async def answer_within_deadline(
    service: ServiceDefinition,
    body: Mapping[str, Any],
    *,
    deadline_s: float,
    actor: str,
    in_flight: InFlight,
) -> dict[str, Any]:
    started = time.perf_counter()
    outcome = "ok"
    work: asyncio.Future[dict[str, Any]] | None = None
    try:
        # shield: the timeout stops our waiting, not the work, which finishes and records in its thread.
        work = in_flight.submit(HookCallInput(service, body, actor))
        return await asyncio.wait_for(asyncio.shield(work), timeout=deadline_s)
    except TimeoutError:
        outcome = "deadline"
        HOOK_FAILURES.labels(service.id, "deadline").inc()
        log.warning("hook.deadline_exceeded", service=service.id, deadline_s=deadline_s)
        return NO_CARDS
    except Exception as exc:  # the EHR must get an answer whatever failed; the cause is logged and counted
        outcome = "error"
        HOOK_FAILURES.labels(service.id, type(exc).__name__).inc()
        log.error("hook.failed", service=service.id, error=type(exc).__name__)
        return NO_CARDS
    finally:
        HOOK_LATENCY.labels(service.id, outcome).observe(time.perf_counter() - started)
        if work is not None and not work.done():
            # Answered (or the caller went away) before the work ended: its outcome is still ours to see.
            work.add_done_callback(functools.partial(_ended_unanswered, service.id))


def _ended_unanswered(service_id: str, work: asyncio.Future[dict[str, Any]]) -> None:
    """The end of work whose call was answered without it. A failure is logged and counted here, by its type only:
    left alone, asyncio would report it when the future is collected, as "exception was never retrieved" with the
    exception's text and traceback (which may quote patient data), outside the service's logs and uncounted."""
    if work.cancelled():
        return
    error = work.exception()
    if error is not None:
        HOOK_FAILURES.labels(service_id, "after_answer").inc()
        log.error("hook.failed_after_answer", service=service_id, error=type(error).__name__)
