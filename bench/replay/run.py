"""Replay benchmark: training set A through one live and three candidate policies, against plain Python, same run.

    python -m bench.replay.run [--stays N] [--workers W] [--bootstrap B]

The replay is `shadow.replay.replay` as `cdsctl replay` runs it (load, score, policy pass, metrics). The baseline is
the same stays loaded and scored row by row in plain Python: the csv module reads each .psv, each stay's rows become
a grid for the same feature extractor, the ONNX session is run once per row, and a threshold loop counts alerts.
Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import resource
import tarfile
import time
from pathlib import Path, PurePosixPath

import numpy as np

from clinical.codes import QUANTITIES
from scoring.features import extract
from scoring.features.grid import GRID_KINDS, HourlyGrid
from scoring.model.registry import LoadedModel, ModelRegistry
from shadow.candidates import parse_candidate
from shadow.replay import replay

ROOT = Path(__file__).resolve().parents[2]
SET_A = ROOT.parent / "shared" / "data" / "physionet2019" / "training_setA.tar.gz"
ARMS = ("deterioration", "deterioration@0.05", "deterioration@0.1", "surface-all")
# PhysioNet column -> (grid column, scale to the canonical unit), as the loader converts them.
_KIND = {kind: j for j, kind in enumerate(GRID_KINDS)}
_COLUMNS = {q.physionet_column: (_KIND[q.kind], q.physionet_scale) for q in QUANTITIES if q.physionet_column}


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the policy pass's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def stay_ids(path: Path, limit: int | None) -> list[str]:
    with tarfile.open(path) as archive:
        names = sorted(PurePosixPath(n).stem for n in archive.getnames() if n.endswith(".psv"))
    return names if limit is None else names[:limit]


def baseline(path: Path, model: LoadedModel, wanted: set[str], threshold: float) -> tuple[int, int, np.ndarray]:
    """Rows, alerts and every score, the plain-Python way: one stay at a time, one model call per row."""
    session, output, name = model.session, model.card.probability_output, model.card.input_name
    rows = alerts = 0
    scores: dict[str, list[float]] = {}
    with tarfile.open(path) as archive:
        for member in archive:
            stay = PurePosixPath(member.name).stem
            if not member.isfile() or stay not in wanted:
                continue
            handle = archive.extractfile(member)
            assert handle is not None
            reader = csv.reader(io.TextIOWrapper(handle, encoding="utf-8"), delimiter="|")
            header = next(reader)
            lines = [[float(v) for v in line] for line in reader if line]
            grid = _grid(stay, header, lines)
            inputs = model.select(extract(grid))
            mine = scores.setdefault(stay, [])
            for i in range(len(lines)):
                score = float(session.run([output], {name: inputs[i : i + 1]})[0][0, 1])
                mine.append(score)
                rows += 1
                if score >= threshold:
                    alerts += 1
    ordered = np.array([s for stay in sorted(scores) for s in scores[stay]], dtype=np.float32)
    return rows, alerts, ordered


def _grid(stay: str, header: list[str], lines: list[list[float]]) -> HourlyGrid:
    at = {column: i for i, column in enumerate(header)}
    values = np.full((len(lines), len(GRID_KINDS)), np.nan)
    for r, line in enumerate(lines):
        for column, (j, scale) in _COLUMNS.items():
            if column in at:
                values[r, j] = line[at[column]] * scale
    first = lines[0]
    gender = first[at["Gender"]]
    return HourlyGrid(
        values=values,
        hour=np.array([int(line[at["ICULOS"]]) for line in lines], dtype=np.int64),
        starts=np.zeros(1, dtype=np.int64),
        stay_ids=(stay,),
        age=np.array([first[at["Age"]]]),
        female=np.array([1.0 if gender == 0 else 0.0 if gender == 1 else math.nan]),
        hosp_adm_hours=np.array([first[at["HospAdmTime"]]]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stays", type=int, default=None, help="the first N stays (default: all of set A)")
    parser.add_argument("--workers", type=int, default=None, help="processes for the policy pass (default: all)")
    parser.add_argument("--bootstrap", type=int, default=50)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    if not SET_A.is_file():
        raise SystemExit(f"training set A is not at {SET_A}")
    model = ModelRegistry().load("sepsis-hgb")
    threshold = model.card.threshold
    arms = [parse_candidate(spec, threshold, name=f"arm:{spec}") for spec in ARMS]
    wanted = stay_ids(SET_A, args.stays)
    cores = len(os.sched_getaffinity(0))
    print(f"{len(wanted):,} stays of training set A; {len(arms)} policies ({', '.join(ARMS)}); {cores} cores")

    clock, cpu = time.perf_counter(), _cpu()
    result = replay(
        SET_A,
        model,
        arms,
        workers=args.workers,
        bootstrap=args.bootstrap,
        stay_ids=None if args.stays is None else set(wanted),
    )
    fast, fast_cpu = time.perf_counter() - clock, _cpu() - cpu
    rows = result.data.rows
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    print(
        f"replay: {rows:,} rows x {len(arms)} policies, scored and evaluated in {fast:.1f} s ({phases}); "
        f"{rows * len(arms) / fast:,.0f} row-decisions/s; target <= 60 s for all of set A"
    )
    print(f"replay CPU time, all processes: {fast_cpu:.1f} s (wall time above {fast / fast_cpu:.2f}x of it)")
    if args.skip_baseline:
        return
    clock, cpu = time.perf_counter(), _cpu()
    base_rows, alerts, scores = baseline(SET_A, model, set(wanted), threshold)
    slow, slow_cpu = time.perf_counter() - clock, _cpu() - cpu
    print(
        f"plain Python: {base_rows:,} rows read with csv, scored one row per ONNX call, thresholded "
        f"({alerts:,} rows over {threshold:.3f}) in {slow:.1f} s ({slow_cpu:.1f} s CPU); {base_rows / slow:,.0f} rows/s"
    )
    same = len(scores) == rows and bool(np.allclose(scores, result.data.scores, atol=1e-6))
    print(f"scores agree with the replay's: {same}")
    loaded = sum(v for k, v in result.seconds.items() if k in ("load", "score"))
    print(f"load and score alone: replay {loaded:.1f} s vs plain Python {slow:.1f} s -> {slow / loaded:.1f}x faster")
    print(
        f"whole replay (4 policies decided, metrics bootstrapped) vs plain Python scoring only: "
        f"{slow / fast:.2f}x the speed ({slow_cpu / fast_cpu:.2f}x on CPU time)"
    )


if __name__ == "__main__":
    main()
