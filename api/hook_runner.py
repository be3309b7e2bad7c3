"""Runs the hook pipeline under the call's deadline: the EHR always gets an answer, never a 500.

If a scorer, the policy or the database fails, or the deadline passes, the answer is `{"cards": []}` with the
failure logged and counted. The pipeline keeps running in its worker thread after a timeout, so whatever it was
about to record is still written, not lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from api.catalog import ServiceDefinition
from api.metrics import HOOK_FAILURES, HOOK_LATENCY
from api.pipeline import HookPipeline
from cdsctl.logs import get_logger

log = get_logger(__name__)

NO_CARDS: dict[str, Any] = {"cards": []}
T = TypeVar("T")


class InFlight:
    """The threads hook work runs on, and the work still running, so that shutdown can let it finish recording
    instead of cutting it off.

    Hook work has a pool of its own rather than the framework's shared one: a call costs one hand-off to an
    executor (no capacity limiter or cancel scope around it), and other blocking work in the process (token
    verification, feedback, admin calls) can never take the threads hook calls need.
    """

    def __init__(self, threads: int = 8) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hook")

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(*args)` on a hook thread, in a copy of the caller's context (log bindings go along), tracked."""
        context = contextvars.copy_context()
        task = asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(context.run, fn, *args))
        self.track(task)
        return task

    def track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout_s: float) -> int:
        """Wait for running work; returns how many were still running when the time ran out. The threads are
        released afterwards (work still running finishes on them; nothing new is accepted)."""
        pending: set[asyncio.Future[Any]] = set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        self._executor.shutdown(wait=False)
        return len(pending)


async def answer_within_deadline(
    pipeline: HookPipeline,
    service: ServiceDefinition,
    body: Mapping[str, Any],
    *,
    deadline_s: float,
    actor: str,
    in_flight: InFlight,
) -> dict[str, Any]:
    started = time.perf_counter()
    outcome = "ok"
    try:
        # shield: the timeout stops our waiting, not the work, which finishes and records in its thread.
        work = in_flight.run(pipeline.handle, service, body, actor)
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
