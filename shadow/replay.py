"""`replay`: history through the live model and policy engine on a simulated clock, evaluated with bootstrap CIs.

Outputs are Parquet tables for the report step: per-row scores and actions, alerts, metrics per candidate (overall
and by unit) with 95% intervals, and paired differences of every candidate against the live arm.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from clinical.physionet import load_table
from policy.document import Route
from scoring.model.registry import LoadedModel
from shadow.candidates import Candidate, band_edges
from shadow.fhir_input import fhir_replay_input, is_fhir, read_units
from shadow.inputs import ReplayInput, patient_key, replay_input
from shadow.metrics import alert_metrics, ranking_shared, row_metrics, row_stats, stay_stats
from shadow.passes import ACTION_CODES, ALERTING, ScorerInfo, run_policies

ALL_UNITS = "all"
# The metrics that need no outcome labels: what a replay of unlabelled (FHIR) data reports.
BURDEN_METRICS = ("alerts_per_patient_day", "share_of_stays_alerted", "time_to_first_alert_median_h")


@dataclass(frozen=True, slots=True)
class ReplayResult:
    data: ReplayInput
    candidates: tuple[Candidate, ...]
    actions: list[npt.NDArray[np.int8]]
    metrics: pl.DataFrame
    differences: pl.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)

    def alerts(self, index: int) -> npt.NDArray[np.bool_]:
        return np.isin(self.actions[index], ALERTING)


def watched_kinds(candidates: Sequence[Candidate]) -> tuple[str, ...]:
    """Observation kinds any candidate's delays wait for: the only part of `observed` a decision can read."""
    kinds: set[str] = set()
    for candidate in candidates:
        document = candidate.document
        for route in _all_routes(document.routes):
            if route.delay is not None and route.delay.until_observation:
                kinds.add(route.delay.until_observation)
        if document.defaults.delay is not None and document.defaults.delay.until_observation:
            kinds.add(document.defaults.delay.until_observation)
    return tuple(sorted(kinds))


def _all_routes(routes: Sequence[Route]) -> list[Route]:
    out: list[Route] = []
    for route in routes:
        out.append(route)
        out.extend(_all_routes(route.routes))
    return out


def replay(
    data_path: Path,
    model: LoadedModel,
    candidates: Sequence[Candidate],
    *,
    workers: int | None = None,
    bootstrap: int = 200,
    seed: int = 2019,
    progress: bool = False,
    stay_ids: Collection[str] | None = None,
    units: Path | None = None,
) -> ReplayResult:
    """Load, score once, decide per candidate, evaluate. `candidates[0]` is the live arm; `stay_ids` a slice.

    `data_path` holds PhysioNet .psv stays or FHIR (NDJSON, Bundles: `shadow.fhir_input`); `units` is a CSV mapping
    FHIR patients to units. Data without labels (FHIR) gets the alert-burden metrics only.
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    if is_fhir(data_path):
        data = fhir_replay_input(data_path, model, watched_kinds(candidates), read_units(units) if units else None)
        seconds["load and score"] = time.perf_counter() - clock
    else:
        table = load_table(data_path, stay_ids)
        seconds["load"] = time.perf_counter() - clock
        clock = time.perf_counter()
        data = replay_input(table, model, watched_kinds(candidates))
        del table
        seconds["score"] = time.perf_counter() - clock
    clock = time.perf_counter()
    card = model.card
    scorer = ScorerInfo(card.model_id, card.version, band_edges(card, card.threshold))
    actions = run_policies(data, scorer, candidates, workers=workers, progress=progress)
    seconds["policy"] = time.perf_counter() - clock
    clock = time.perf_counter()
    metrics, differences = evaluate(data, candidates, actions, bootstrap=bootstrap, seed=seed)
    if not data.labelled:  # without outcomes, precision, recall, lead time and utility are not defined
        metrics, differences = (
            f.filter(pl.col("metric").is_in(BURDEN_METRICS)) if "metric" in f.columns else f
            for f in (metrics, differences)
        )
    seconds["metrics"] = time.perf_counter() - clock
    return ReplayResult(data, tuple(candidates), actions, metrics, differences, seconds)


def evaluate(
    data: ReplayInput,
    candidates: Sequence[Candidate],
    actions: Sequence[npt.NDArray[np.int8]],
    *,
    bootstrap: int = 200,
    seed: int = 2019,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Metrics per candidate and unit with percentile 95% CIs, and paired differences (candidate - live) overall.

    Every candidate is evaluated on the same bootstrap draws of stays, which is what makes the differences paired.
    """
    stays = len(data.starts)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(stays, np.full(stays, 1.0 / stays), size=bootstrap).astype(np.float64)
    units = np.array(data.units)
    groups = [(ALL_UNITS, np.ones(stays, dtype=bool))]
    groups += [(u, units == u) for u in sorted(set(data.units))]
    values: dict[tuple[str, str], dict[str, npt.NDArray[np.float64]]] = {}
    rows: list[dict[str, object]] = []
    for index, candidate in enumerate(candidates):
        alert_stats = stay_stats(data.labels, np.isin(actions[index], ALERTING), data.starts)
        ranks = row_stats(data.labels, data.scores, candidate.threshold, data.starts)
        for unit, mask in groups:
            m = mask.astype(np.float64)
            point = {**row_metrics(ranks, m), **alert_metrics(alert_stats, m)}
            # The ranking metrics do not depend on the candidate; their draws are computed overall only.
            ranking = unit == ALL_UNITS and index == 0
            reps = [{**row_metrics(ranks, d * m, ranking=ranking), **alert_metrics(alert_stats, d * m)} for d in draws]
            for name, value in point.items():
                sample = np.array([r.get(name, np.nan) for r in reps])
                if ranking_shared(name, index, unit == ALL_UNITS):  # same scores as live: same draws, difference 0
                    sample = values[(candidates[0].name, ALL_UNITS)][name]
                values[(candidate.name, unit)] = values.get((candidate.name, unit), {})
                values[(candidate.name, unit)][name] = sample
                lo, hi = _interval(sample)
                rows.append(
                    {"candidate": candidate.name, "unit": unit, "metric": name, "value": value, "lo": lo, "hi": hi}
                )
    live = candidates[0].name
    diffs: list[dict[str, object]] = []
    points = {(str(r["candidate"]), str(r["unit"]), str(r["metric"])): float(r["value"]) for r in rows}  # type: ignore[arg-type]
    for candidate in candidates[1:]:
        for name, sample in values[(candidate.name, ALL_UNITS)].items():
            delta = sample - values[(live, ALL_UNITS)][name]
            lo, hi = _interval(delta)
            gap = points[(candidate.name, ALL_UNITS, name)] - points[(live, ALL_UNITS, name)]
            diffs.append(
                {"candidate": candidate.name, "versus": live, "metric": name, "difference": gap, "lo": lo, "hi": hi}
            )
    return pl.DataFrame(rows), pl.DataFrame(diffs)


def _interval(sample: npt.NDArray[np.float64]) -> tuple[float, float]:
    finite = sample[np.isfinite(sample)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return float(lo), float(hi)


def write_outputs(result: ReplayResult, out: Path) -> list[Path]:
    """Writes rows.parquet (scores, each candidate's action), alerts, metrics and differences tables."""
    out.mkdir(parents=True, exist_ok=True)
    data = result.data
    stay = data.stay_of_row
    keys = np.array([patient_key(s) for s in data.stay_ids])
    names = [a.value for a in ACTION_CODES]
    columns: dict[str, object] = {
        "patient": keys[stay],
        "unit": np.array(data.units)[stay],
        "hour": data.hours,
        "score": data.scores,
        "sepsis_label": data.labels,
    }
    for candidate, actions in zip(result.candidates, result.actions, strict=True):
        columns[f"action:{candidate.name}"] = np.array(names)[actions]
    rows = pl.DataFrame(columns)
    alerts = pl.concat(
        [
            rows.select("patient", "unit", "hour", "score")
            .filter(pl.Series(result.alerts(i)))
            .with_columns(pl.lit(c.name).alias("candidate"), pl.lit(c.threshold).alias("threshold"))
            for i, c in enumerate(result.candidates)
        ]
    )
    written = []
    for name, frame in (
        ("rows", rows),
        ("alerts", alerts),
        ("metrics", result.metrics),
        ("differences", result.differences),
    ):
        path = out / f"{name}.parquet"
        frame.write_parquet(path)
        written.append(path)
    return written
