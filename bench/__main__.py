"""`python -m bench` runs every benchmark in turn; each prints its own figures and ratios."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ["bench.hooks.run", "bench.scoring.run", "bench.policy.run", "bench.replay.run", "bench.feedback.run"]

if __name__ == "__main__":
    failed = [name for name in BENCHMARKS if subprocess.call([sys.executable, "-m", name]) != 0]
    raise SystemExit(1 if failed else 0)
