"""`python -m bench.reliability` runs every reliability script in turn at its default (short) duration; each prints
its figures and exits non-zero when something was lost, crashed or left half-written. Not part of `make bench`:
together they take about ten minutes and need PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

SCRIPTS = [
    "bench.reliability.sustained",
    "bench.reliability.database_outage",
    "bench.reliability.fhir_outage",
    "bench.reliability.worker_kill",
    "bench.reliability.webhook_outage",
]

if __name__ == "__main__":
    failed = [name for name in SCRIPTS if subprocess.call([sys.executable, "-m", name, *sys.argv[1:]]) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    raise SystemExit(1 if failed else 0)
