"""The database disappears under load and comes back: hook calls go through a TCP proxy to PostgreSQL that is cut
for `--outage` seconds mid-run (reset and refused, as a stopped server; or `--mode blackhole`, as a partition).

Prints, before / during / after the cut: latency, statuses, what was recorded; /readyz's answers; how long after
the restore the first call was recorded again; whether every recorded call has its audit record and the chain
verifies. Expected: answers within the deadline throughout ({"cards": []} while the database is away), /readyz 503
while it is away, recovery within seconds, nothing half-written.

    python -m bench.reliability.database_outage [--duration 40] [--outage 10] [--rate 8] [--mode refuse]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import make_url

from bench.reliability import harness
from bench.reliability.load import SERVICE, HookBodies, Outcome, open_loop, percentile
from bench.reliability.proxy import CuttableProxy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=40)
    parser.add_argument("--cut-at", type=float, default=10)
    parser.add_argument("--outage", type=float, default=10)
    parser.add_argument("--rate", type=float, default=8, help="hook calls per second, open loop")
    parser.add_argument("--mode", choices=["refuse", "blackhole"], default="refuse")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=1.0, help="CDS_HOOK_DEADLINE_SECONDS")
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, harness.fresh_schema(args.database_url) as database_url:
        direct = make_url(database_url)
        proxy = CuttableProxy(direct.host or "127.0.0.1", direct.port or 5432, port=harness.free_port())
        proxied = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        env = harness.service_env(proxied, Path(tmp), CDS_HOOK_DEADLINE_SECONDS=str(args.deadline))
        harness.migrate(env)
        restored_at = args.cut_at + args.outage
        events: list[tuple[float, str]] = []

        def inject(elapsed: float) -> None:
            if elapsed >= args.cut_at and not events:
                proxy.cut(args.mode)
                events.append((elapsed, "cut"))
            elif elapsed >= restored_at and len(events) == 1:
                proxy.restore()
                events.append((elapsed, "restored"))

        load = harness.load_average()
        with harness.serve(env, Path(tmp) / "server.log", workers=args.workers) as service:
            origin = time.perf_counter()
            ready = harness.Poller(f"{service.base_url}/readyz", origin)
            outcomes = asyncio.run(
                open_loop(
                    f"{service.base_url}/cds-services/{SERVICE}",
                    rate=args.rate,
                    duration_s=args.duration,
                    bodies=HookBodies(),
                    on_tick=inject,
                )
            )
            ready.stop()
            alive = service.alive()
        proxy.close()
        verify_env = {**env, "CDS_DATABASE_URL": database_url}
        clean, verify = harness.audit_verify(verify_env)
        stored = harness.stored_cards(database_url, [o.hook_instance for o in outcomes])
        calls, audits = harness.hook_records(database_url)

    cut, restored = events[0][0], events[1][0]
    print(
        f"database outage ({args.mode}): {args.workers} workers, {args.rate:g} hook calls/s open loop for "
        f"{args.duration:g} s, proxy cut at {cut:.1f} s, restored at {restored:.1f} s; deadline {args.deadline:g} s; "
        f"{load} at start"
    )
    phases = {
        "before": [o for o in outcomes if o.sent_at < cut],
        "during": [o for o in outcomes if cut <= o.sent_at < restored],
        "after": [o for o in outcomes if o.sent_at >= restored],
    }
    print(
        f"{'phase':>7} {'calls':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'200':>5} {'other':>6} {'recorded':>9}"
    )
    for name, group in phases.items():
        latencies = [o.latency_s * 1000 for o in group]
        ok = sum(1 for o in group if o.status == 200)
        recorded = sum(1 for o in group if o.hook_instance in stored)
        print(
            f"{name:>7} {len(group):6d} {percentile(latencies, 50):7.0f} {percentile(latencies, 99):7.0f} "
            f"{max(latencies, default=0):7.0f} {ok:5d} {len(group) - ok:6d} {recorded:9d}"
        )
    recovered = _first_recorded_after(outcomes, stored, restored)
    print(
        "first call recorded again: "
        + (f"sent {recovered - restored:.1f} s after the restore" if recovered is not None else "NEVER")
    )
    during_ready = [s for s in ready.samples if cut + 1 <= s[0] < restored]
    ready_again = next((t for t, status, _ in ready.samples if t >= restored and status == 200), None)
    statuses = sorted({status for _, status, _ in during_ready})
    slowest = max((latency for _, _, latency in during_ready), default=0)
    print(
        f"/readyz while cut: {len(during_ready)} polls, statuses {statuses}, slowest {slowest * 1000:.0f} ms; "
        + (f"200 again {ready_again - restored:.1f} s after the restore" if ready_again else "never 200 again")
    )
    print(
        "answered with cards yet never recorded: "
        f"{sum(1 for o in outcomes if (o.cards or 0) > 0 and o.hook_instance not in stored)}"
    )
    print(
        f"hook calls recorded {calls}, their audit records {audits} ({'none' if calls == audits else 'SOME'} "
        f"half-written); audit verify: {'clean' if clean else 'BROKEN'} ({verify}); server alive: {alive}"
    )
    on_time = all(o.status == 200 and o.latency_s <= args.deadline + 1.0 for o in phases["during"])
    print(f"every call during the cut answered 200 within deadline + 1 s: {on_time}")
    return 0 if clean and alive and calls == audits and recovered is not None else 1


def _first_recorded_after(outcomes: list[Outcome], stored: dict[str, int], restored: float) -> float | None:
    return next((o.sent_at for o in outcomes if o.sent_at >= restored and o.hook_instance in stored), None)


if __name__ == "__main__":
    raise SystemExit(main())
