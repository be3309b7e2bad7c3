"""The hook threads (api.hook_runner.InFlight): calls that queue while a thread is busy are recorded together, and a
slow call holds back only the calls already taken beside it, never the rest of the queue."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, cast

from structlog.testing import capture_logs

from api.catalog import ServiceDefinition
from api.hook_runner import BATCH_SECONDS, NO_CARDS, InFlight, answer_within_deadline
from api.metrics import HOOK_FAILURES
from api.pipeline import HookCallInput, HookPipeline


class _Pipeline:
    """Answers each call with its own name; the call named `gate` waits until the test opens the gate."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.at_gate = threading.Event()

    def handle_batch(self, calls: Iterable[HookCallInput]) -> list[Any]:
        names: list[str] = []
        for call in calls:
            name = call.request["name"]
            if name == "gate":
                self.at_gate.set()
                self.gate.wait(5)
            if name == "broken":
                raise RuntimeError("the pipeline itself failed")
            if name == "gate-then-broken":
                self.at_gate.set()
                self.gate.wait(5)
                raise RuntimeError("failed with patient data in its text: 38.9 Cel")
            names.append(name)
        self.batches.append(names)
        return [{"answer": name} for name in names]


def _call(name: str) -> HookCallInput:
    return HookCallInput(cast(ServiceDefinition, None), {"name": name})


async def _wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 5)


def test_calls_queued_behind_a_busy_thread_share_the_next_batch() -> None:
    async def run() -> list[Any]:
        pipeline = _Pipeline()
        in_flight = InFlight(cast(HookPipeline, pipeline), threads=1)
        first = in_flight.submit(_call("gate"))
        await _wait_for(pipeline.at_gate)
        queued = [in_flight.submit(_call(f"c{n}")) for n in range(4)]
        await asyncio.sleep(BATCH_SECONDS * 4)  # the first batch's time is up before its call is worked out
        pipeline.gate.set()
        answers = await asyncio.gather(first, *queued)
        await in_flight.drain(1)
        return [pipeline.batches, answers]

    batches, answers = asyncio.run(run())

    assert batches == [["gate"], ["c0", "c1", "c2", "c3"]]
    assert [a["answer"] for a in answers] == ["gate", "c0", "c1", "c2", "c3"]


def test_a_slow_call_does_not_hold_back_the_queue_from_a_free_thread() -> None:
    async def run() -> tuple[list[list[str]], bool]:
        pipeline = _Pipeline()
        in_flight = InFlight(cast(HookPipeline, pipeline), threads=2)
        slow = in_flight.submit(_call("gate"))
        await _wait_for(pipeline.at_gate)
        others = [in_flight.submit(_call(f"c{n}")) for n in range(3)]
        await asyncio.wait_for(asyncio.gather(*others), 5)  # answered while the slow call still waits
        still_waiting = not slow.done()
        pipeline.gate.set()
        await slow
        await in_flight.drain(1)
        return pipeline.batches, still_waiting

    batches, still_waiting = asyncio.run(run())

    assert still_waiting
    assert sorted(name for batch in batches for name in batch) == ["c0", "c1", "c2", "gate"]


def test_a_failing_batch_fails_each_of_its_calls_not_the_thread() -> None:
    async def run() -> tuple[BaseException | None, Any]:
        pipeline = _Pipeline()
        in_flight = InFlight(cast(HookPipeline, pipeline), threads=1)
        broken = in_flight.submit(_call("broken"))
        failure = await asyncio.wait([broken], timeout=5)
        later = await in_flight.submit(_call("later"))
        await in_flight.drain(1)
        assert failure[0]
        return broken.exception(), later

    failure, later = asyncio.run(run())

    assert isinstance(failure, RuntimeError)
    assert later == {"answer": "later"}


def test_work_that_fails_after_its_call_was_answered_is_logged_and_counted_by_type_not_left_to_asyncio() -> None:
    """The deadline answers the EHR with no cards while the work goes on; when that work then fails, the service logs
    and counts it, the exception's type only. Unseen, asyncio would report it when the future is collected, its text
    (which may quote patient data) and traceback outside the service's logs, and nothing would count it."""
    service = cast(ServiceDefinition, type("Service", (), {"id": "late-failure"})())
    failures = HOOK_FAILURES.labels("late-failure", "after_answer")
    before = failures._value.get()

    async def run() -> tuple[dict[str, Any], list[MutableMapping[str, Any]], list[dict[str, Any]]]:
        reported: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        pipeline = _Pipeline()
        in_flight = InFlight(cast(HookPipeline, pipeline), threads=1)
        with capture_logs() as logs:
            answer = await answer_within_deadline(
                service, {"name": "gate-then-broken"}, deadline_s=0.05, actor="ehr", in_flight=in_flight
            )
            pipeline.gate.set()
            assert await in_flight.drain(5) == 0
            await asyncio.sleep(0)  # the work's done callbacks run
        gc.collect()  # an exception never retrieved is reported when its future is collected
        await asyncio.sleep(0)
        return answer, logs, reported

    answer, logs, reported = asyncio.run(run())

    assert answer == NO_CARDS
    assert reported == []
    late = [entry for entry in logs if entry["event"] == "hook.failed_after_answer"]
    assert late == [
        {"event": "hook.failed_after_answer", "service": "late-failure", "error": "RuntimeError", "log_level": "error"}
    ]
    assert "38.9" not in repr(logs)
    assert failures._value.get() == before + 1
