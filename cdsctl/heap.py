"""The garbage collector's settings for a serving process."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Applied once a serving process has loaded everything it keeps (`cdsctl serve`, each worker).

    The hook benchmark gives a second echo the same settings (bench/hooks): without them the echo's latency tail is
    its full collections, not the framework's work, and a p99 compared with it flatters the service.
    """
    # Everything loaded so far (models, rule engines, compiled policies, libraries) lives as long as the process.
    # Frozen, the cyclic collector stops re-walking it: a hook call allocates thousands of small objects (the parsed
    # 60 KB request alone), each full collection otherwise traversed the whole heap, and parsing the request cost
    # 1.8 ms of CPU in the server against 0.17 ms on its own (measured; see README, hook benchmark).
    gc.collect()
    gc.freeze()
    # A hook call's garbage is mostly acyclic and freed by reference counting; a young generation of 50,000
    # allocations (default 700) lets the collector run every few calls instead of many times within each.
    gc.set_threshold(50_000, 20, 20)
