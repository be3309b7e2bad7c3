"""Notify workers killed (SIGKILL) in the middle of delivering the outbox, then restarted, while new messages keep
arriving: every message must reach the webhook receiver, none lost; a message whose send was cut off after the
receiver got it is sent again with the same Idempotency-Key, so the receiver applies each key once.

    python -m bench.reliability.worker_kill [--messages 1500] [--rate 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

from bench.reliability import harness
from bench.reliability.receiver import WebhookReceiver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=50, help="messages enqueued per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=2, help="how many times a worker is killed and restarted")
    parser.add_argument("--restart-after", type=float, default=2.0)
    parser.add_argument("--receiver-work", type=float, default=0.02, help="seconds the receiver spends per message")
    parser.add_argument("--drain-timeout", type=float, default=180)
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    keys = [f"bench-{n:06d}" for n in range(args.messages)]
    producing_s = args.messages / args.rate

    receiver = WebhookReceiver(work_s=args.receiver_work)
    with tempfile.TemporaryDirectory() as tmp, harness.fresh_schema(args.database_url) as database_url:
        env = harness.service_env(database_url, Path(tmp), CDS_NOTIFY=harness.notify_settings(receiver.url))
        harness.migrate(env)
        log = Path(tmp) / "worker.log"
        load = harness.load_average()
        workers = [harness.start_worker(env, log) for _ in range(args.workers)]
        enqueue = harness.Enqueuer(database_url)
        # The first message waits for the workers to be up and delivering; the run's clock starts after it.
        enqueue(keys[:1])
        while receiver_total(receiver) == 0:
            time.sleep(0.05)
        start = time.perf_counter()

        def produce() -> None:
            for n in range(1, len(keys), 10):
                due = start + n / args.rate
                time.sleep(max(0.0, due - time.perf_counter()))
                enqueue(keys[n : n + 10])

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        kills: list[tuple[float, int]] = []
        for k in range(args.kills):
            time.sleep(max(0.0, start + producing_s * (k + 1) / (args.kills + 1) - time.perf_counter()))
            victim = k % len(workers)
            in_hand = receiver_total(receiver)
            os.kill(workers[victim].pid, signal.SIGKILL)
            workers[victim].wait()
            kills.append((time.perf_counter() - start, in_hand))
            time.sleep(args.restart_after)
            workers[victim] = harness.start_worker(env, log)
        producer.join()
        enqueue.close()
        produced = time.perf_counter() - start
        deadline = time.perf_counter() + args.drain_timeout
        while time.perf_counter() < deadline:
            states = harness.outbox_states(database_url)
            if states.get("delivered", 0) + states.get("dead", 0) >= len(keys):
                break
            time.sleep(0.5)
        drained = time.perf_counter() - start
        for worker in workers:
            harness.stop(worker)
        states = harness.outbox_states(database_url)
        clean, verify = harness.audit_verify(env)
    receiver.down()

    received = set(receiver.received)
    lost = [key for key in keys if key not in received]
    print(
        f"worker kill: {args.messages} webhook messages enqueued at {args.rate:g}/s over {producing_s:.0f} s, "
        f"{args.workers} `cdsctl worker` processes, receiver {args.receiver_work * 1000:g} ms per message; {load}"
    )
    for at, count in kills:
        print(f"  SIGKILL a worker at {at:.1f} s ({count} received by then), restarted {args.restart_after:g} s later")
    print(f"producing ended at {produced:.1f} s; outbox drained at {drained:.1f} s; outbox states {states}")
    print(
        f"keys received {len(received)}/{len(keys)}, lost {len(lost)}, sent again after a kill (same key) "
        f"{receiver.duplicates}; audit verify: {'clean' if clean else 'BROKEN'} ({verify})"
    )
    return 0 if not lost and clean and states.get("delivered", 0) == len(keys) else 1


def receiver_total(receiver: WebhookReceiver) -> int:
    return sum(receiver.received.values())


if __name__ == "__main__":
    raise SystemExit(main())
