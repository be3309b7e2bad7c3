"""An open-loop load generator: requests leave on a fixed schedule whatever the server's pace, and each latency is
counted from its scheduled start, so a stalled server shows up as latency instead of as fewer requests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bench.hooks.run import hook_request

SERVICE = "deterioration-news2"


@dataclass(frozen=True)
class Outcome:
    sent_at: float  # seconds since the run started (the scheduled time)
    latency_s: float
    status: int  # 0: no HTTP answer (connection refused, reset, client timeout)
    cards: int | None
    hook_instance: str
    error: str | None = None


class HookBodies:
    """The bench hook request (1 Patient, 100 Observations), a fresh hookInstance and patient on every call."""

    def __init__(self, observations: int = 100) -> None:
        template = hook_request(observations)
        template["prefetch"]["patient"]["identifier"][0]["value"] = "__MRN__"
        self.template = json.dumps(template)

    def __call__(self) -> tuple[str, bytes]:
        instance = str(uuid.uuid4())
        body = self.template.replace("__HOOK_INSTANCE__", instance, 1).replace("__MRN__", f"BENCH-{instance[:8]}", 1)
        return instance, body.encode()


async def open_loop(
    url: str,
    *,
    rate: float,
    duration_s: float,
    bodies: Callable[[], tuple[str, bytes]],
    timeout_s: float = 10.0,
    on_tick: Callable[[float], None] | None = None,
) -> list[Outcome]:
    """POST `rate` requests a second for `duration_s`. `on_tick(elapsed)` is called about every 0.5 s (a run's
    fault injection and sampling hang off it)."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
    outcomes: list[Outcome] = []
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
        start = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        total = int(rate * duration_s)
        next_tick = 0.0

        async def one(scheduled: float) -> None:
            instance, body = bodies()
            headers = {"Content-Type": "application/json"}
            status, cards, error = 0, None, None
            try:
                response = await client.post(url, content=body, headers=headers)
                status = response.status_code
                if status == 200:
                    cards = len(response.json().get("cards", []))
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            outcomes.append(Outcome(scheduled, time.perf_counter() - start - scheduled, status, cards, instance, error))

        for n in range(total):
            scheduled = n / rate
            now = time.perf_counter() - start
            if on_tick is not None and now >= next_tick:
                on_tick(now)
                next_tick = now + 0.5
            if scheduled > now:
                await asyncio.sleep(scheduled - now)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
    return sorted(outcomes, key=lambda o: o.sent_at)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    latencies = [o.latency_s * 1000 for o in outcomes]
    return {
        "requests": len(outcomes),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "errors": sum(1 for o in outcomes if o.status != 200),
    }
