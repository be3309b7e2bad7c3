"""The webhook receiver down for a long time (its port closed), then back, while messages keep arriving: retries
back off up to a cap; a message whose attempts run out goes to the dead letters; once the receiver is back the rest
are delivered, and an operator's retry of the dead letters (audited) delivers those too. Nothing is lost.

Time is compressed: a receiver down for minutes against a backoff capped at 10 minutes is run as `--outage` seconds
against `--backoff-cap` seconds (the same number of attempts fit into the outage).

    python -m bench.reliability.webhook_outage [--outage 60] [--backoff-cap 5] [--max-attempts 8] [--messages 300]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from bench.reliability import harness
from bench.reliability.receiver import WebhookReceiver
from notify.dead_letters import list_dead_letters, retry_dead_letter
from notify.unit_of_work import SqlNotifyUnitOfWork
from store.db import make_engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5, help="messages enqueued per second")
    parser.add_argument("--down-at", type=float, default=5)
    parser.add_argument("--outage", type=float, default=60)
    parser.add_argument("--backoff-base", type=float, default=0.5)
    parser.add_argument("--backoff-cap", type=float, default=5)
    parser.add_argument("--max-attempts", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--drain-timeout", type=float, default=180)
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    keys = [f"bench-{n:06d}" for n in range(args.messages)]

    receiver = WebhookReceiver()
    notify = harness.notify_settings(
        receiver.url,
        backoff_base_seconds=args.backoff_base,
        backoff_cap_seconds=args.backoff_cap,
        max_attempts=args.max_attempts,
    )
    with tempfile.TemporaryDirectory() as tmp, harness.fresh_schema(args.database_url) as database_url:
        env = harness.service_env(database_url, Path(tmp), CDS_NOTIFY=notify)
        harness.migrate(env)
        load = harness.load_average()
        workers = [harness.start_worker(env, Path(tmp) / "worker.log") for _ in range(args.workers)]
        enqueue = harness.Enqueuer(database_url)
        enqueue(keys[:1])
        while not receiver.received:
            time.sleep(0.05)
        start = time.perf_counter()

        def produce() -> None:
            for n in range(1, len(keys)):
                time.sleep(max(0.0, start + n / args.rate - time.perf_counter()))
                enqueue(keys[n : n + 1])

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        time.sleep(max(0.0, start + args.down_at - time.perf_counter()))
        receiver.down()
        before_down = len(receiver.received)
        time.sleep(args.outage)
        receiver.up()
        back = time.perf_counter() - start
        producer.join()
        enqueue.close()
        states = _wait_settled(database_url, len(keys), args.drain_timeout)
        settled = time.perf_counter() - start
        dead_before_retry = states.get("dead", 0)
        engine = make_engine(database_url)
        try:
            for item in list_dead_letters(lambda: SqlNotifyUnitOfWork(engine), limit=10_000):
                retry_dead_letter(lambda: SqlNotifyUnitOfWork(engine), item.id, operator="operator:bench")
        finally:
            engine.dispose()
        final = _wait_settled(database_url, len(keys), args.drain_timeout)
        retried = time.perf_counter() - start
        for worker in workers:
            harness.stop(worker)
        clean, verify = harness.audit_verify(env)
    receiver.down()

    lost = [key for key in keys if key not in receiver.received]
    print(
        f"webhook receiver outage: {args.messages} messages at {args.rate:g}/s, receiver down from {args.down_at:g} s "
        f"for {args.outage:g} s (port closed); backoff base {args.backoff_base:g} s, cap {args.backoff_cap:g} s, "
        f"{args.max_attempts} attempts; {args.workers} worker(s); {load}"
    )
    print(f"received before the outage {before_down}; receiver back at {back:.1f} s")
    print(
        f"settled at {settled:.1f} s ({settled - back:.1f} s after the receiver came back): "
        f"delivered {states.get('delivered', 0)}, dead letters {dead_before_retry}"
    )
    print(f"dead letters retried by an operator (audited); all settled at {retried:.1f} s: {final}")
    print(
        f"keys received {len(receiver.received)}/{len(keys)}, lost {len(lost)}, received twice {receiver.duplicates}; "
        f"audit verify: {'clean' if clean else 'BROKEN'} ({verify})"
    )
    return 0 if not lost and clean and final.get("delivered", 0) == len(keys) else 1


def _wait_settled(database_url: str, total: int, timeout_s: float) -> dict[str, int]:
    """Wait until every message is delivered or dead (none pending or in delivery)."""
    deadline = time.perf_counter() + timeout_s
    states = harness.outbox_states(database_url)
    while time.perf_counter() < deadline:
        states = harness.outbox_states(database_url)
        if states.get("delivered", 0) + states.get("dead", 0) >= total:
            break
        time.sleep(0.5)
    return states


if __name__ == "__main__":
    raise SystemExit(main())
