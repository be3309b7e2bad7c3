"""Sustained load: the maximum hook throughput (wrk, closed loop; the lower of wrk's answer rate and the rate of
calls recorded), then a long open-loop run at 70 % of it on PostgreSQL with 2 workers, printing p50/p99 per window,
errors, answers that fell back to {"cards": []} at the deadline, and the servers' resident memory over time.

    python -m bench.reliability.sustained [--duration 60] [--workers 2] [--fraction 0.7] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.hooks.run import _latency_ms
from bench.reliability import harness
from bench.reliability.load import SERVICE, HookBodies, Outcome, open_loop, summary

HERE = Path(__file__).resolve().parent
DEADLINE_S = 1.0  # CDS_HOOK_DEADLINE_SECONDS, its default, set explicitly for the run


@dataclass(frozen=True)
class Maximum:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def wrk(url: str, body_file: Path, duration: int, connections: int) -> Maximum:
    """Closed-loop maximum: wrk with a new patient and hookInstance per request (request.lua)."""
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(HERE / "request.lua"), url]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _latency_ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _latency_ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return Maximum(rps, p50, p99, int(non_2xx.group(1)) if non_2xx else 0)


def _settled_count(database_url: str) -> tuple[int, float]:
    """The hook calls recorded once background work has stopped adding any for 2 s, and when the last came."""
    count, changed = harness.hook_records(database_url)[0], time.perf_counter()
    while time.perf_counter() - changed < 2:
        time.sleep(0.25)
        now = harness.hook_records(database_url)[0]
        if now != count:
            count, changed = now, time.perf_counter()
    return count, changed


def fallbacks(outcomes: list[Outcome], stored: dict[str, int], deadline_s: float) -> tuple[int, int]:
    """(answers that came at or after the hook deadline: at most this many were {"cards": []} fallbacks,
    answers of 200 whose call was never recorded)."""
    late = sum(1 for o in outcomes if o.status == 200 and o.latency_s >= deadline_s)
    unrecorded = sum(1 for o in outcomes if o.status == 200 and o.hook_instance not in stored)
    return late, unrecorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60, help="seconds of sustained load (the issue asks 300)")
    parser.add_argument("--probe", type=int, default=15, help="seconds of the wrk maximum-throughput probe")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.7)
    parser.add_argument("--windows", type=int, default=6, help="how many windows p50/p99 are reported over")
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp, harness.fresh_schema(args.database_url) as database_url:
        env = harness.service_env(database_url, Path(tmp), CDS_HOOK_DEADLINE_SECONDS=str(DEADLINE_S))
        harness.migrate(env)
        bodies = HookBodies()
        body_file = Path(tmp) / "request.json"
        body_file.write_text(bodies.template)
        load_before = harness.load_average()
        with harness.serve(env, Path(tmp) / "server.log", workers=args.workers) as service:
            url = f"{service.base_url}/cds-services/{SERVICE}"
            wrk(url, body_file, 5, args.connections)
            before, probe_started = harness.hook_records(database_url)[0], time.perf_counter()
            maximum = wrk(url, body_file, args.probe, args.connections)
            recorded, finished = _settled_count(database_url)
            # wrk counts answers, and past the deadline an answer is {"cards": []} while the work goes on in the
            # background: the rate of calls the service records is the throughput it can keep up.
            recorded_rate = (recorded - before) / (finished - probe_started)
            rate = min(maximum.requests_per_s, recorded_rate) * args.fraction
            rss: list[tuple[float, float]] = []

            def sample(elapsed: float) -> None:
                if not rss or elapsed - rss[-1][0] >= 5:
                    rss.append((elapsed, service.rss_mib()))

            started = time.perf_counter()
            outcomes = asyncio.run(open_loop(url, rate=rate, duration_s=args.duration, bodies=bodies, on_tick=sample))
            wall = time.perf_counter() - started
            rss.append((wall, service.rss_mib()))
            alive = service.alive()
        load_after = harness.load_average()
        clean, verify = harness.audit_verify(env)
        stored = harness.stored_cards(database_url, [o.hook_instance for o in outcomes])

    total = summary(outcomes)
    print(
        f"sustained load: {args.workers} workers, PostgreSQL, patient-view with 100 Observations, a new patient and "
        f"hookInstance per call ({load_before} before, {load_after} after)"
    )
    print(
        f"maximum (wrk -t1 -c{args.connections} -d{args.probe}s): {maximum.requests_per_s:.1f} req/s, "
        f"p99 {maximum.p99_ms:.0f} ms, non-2xx {maximum.non_2xx}; calls recorded {recorded_rate:.1f}/s "
        "(until the last was written)"
    )
    print(
        f"sustained: {args.fraction:.0%} = {rate:.1f} req/s open loop for {args.duration} s "
        f"({total['requests']} requests, {total['requests'] / wall:.1f} req/s achieved)"
    )
    print(f"{'window':>12} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} {'late':>6}")
    width = args.duration / args.windows
    for n in range(args.windows):
        window = [o for o in outcomes if n * width <= o.sent_at < (n + 1) * width]
        figures = summary(window)
        late, _ = fallbacks(window, stored, DEADLINE_S)
        label = f"{n * width:.0f}-{(n + 1) * width:.0f} s"
        print(
            f"{label:>12} {figures['requests']:9d} {figures['p50_ms']:8.0f} {figures['p99_ms']:8.0f} "
            f"{figures['max_ms']:8.0f} {figures['errors']:7d} {late:6d}"
        )
    print(
        f"{'all':>12} {total['requests']:9d} {total['p50_ms']:8.0f} {total['p99_ms']:8.0f} {total['max_ms']:8.0f} "
        f"{total['errors']:7d} {fallbacks(outcomes, stored, DEADLINE_S)[0]:6d}"
    )
    print(
        f'late: answered at or after the {DEADLINE_S:g} s hook deadline (an upper bound on {{"cards": []}} '
        f"fallbacks); answered yet never recorded: {fallbacks(outcomes, stored, DEADLINE_S)[1]}"
    )
    print("server RSS (MiB, supervisor + workers) over time: " + ", ".join(f"{t:.0f}s {m:.0f}" for t, m in rss))
    quarter = max(1, len(rss) // 4)
    first = sum(m for _, m in rss[:quarter]) / quarter
    last = sum(m for _, m in rss[-quarter:]) / quarter
    growth = 100 * (last - first) / first
    print(f"RSS first quarter {first:.0f} MiB, last quarter {last:.0f} MiB: growth {growth:+.1f} %")
    print(f"server alive at the end: {alive}; audit verify: {'clean' if clean else 'BROKEN'} ({verify})")
    return 0 if clean and alive and total["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
