"""The policy pass: each stay decided hour by hour on a simulated clock by the live `RoutedPolicy`, per candidate.

Every row is decided by the engine except a row whose band the policy always suppresses (`always_suppressed`) when
the row before had the same band: its only effects would be a repeat of the same suppression and an unchanged band
in the state, so the decision is written down without asking the engine. Stays are split into chunks over processes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from tqdm import tqdm  # type: ignore[import-untyped]  # no type information shipped

from policy.context import PatientFacts, PolicyContext, UnitFacts
from policy.engine import RoutedPolicy
from policy.port import Action
from policy.state import InMemoryPolicyState
from scoring.port import RiskOutput
from shadow.candidates import Candidate, always_suppressed, scaled_edges
from shadow.inputs import ReplayInput, patient_key

# PhysioNet has no wall-clock times; every stay is admitted at this instant, so time-of-day rules (handover
# windows, shifts) act as they would for a morning admission (FHIR stays keep their own admission instant). Row
# hour h is decided at the end of ICU hour h.
ICU_ADMISSION = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
HOOK, ROLE, UNIT_TYPE = "patient-view", "nurse", "icu"
ACTION_CODES: tuple[Action, ...] = (Action.SUPPRESS, Action.SURFACE, Action.ESCALATE, Action.DELAY)
_CODE = {action: i for i, action in enumerate(ACTION_CODES)}
ALERTING = (_CODE[Action.SURFACE], _CODE[Action.ESCALATE])


@dataclass(frozen=True, slots=True)
class ScorerInfo:
    """What a risk output says about the model that made it."""

    scorer_id: str
    version: str
    # Band names with their lower score edge, highest first (`candidates.band_edges`).
    bands: tuple[tuple[str, float], ...]


@lru_cache(maxsize=4096)
def decision_time(hour: int) -> datetime:
    """The simulated instant a row is decided at: the last second of its ICU hour."""
    return ICU_ADMISSION + timedelta(hours=hour, seconds=-1)


@lru_cache(maxsize=4096)
def measurement_time(hour: int) -> datetime:
    """When a measurement of ICU hour `hour` is taken to have been made: the start of that hour."""
    return ICU_ADMISSION + timedelta(hours=hour - 1)


def band_of(score: float, bands: tuple[tuple[str, float], ...]) -> str:
    for name, edge in bands:
        if score >= edge:
            return name
    return bands[-1][0]


def decide_stay(
    policy: RoutedPolicy, scorer: ScorerInfo, data: ReplayInput, stay: int, elide: frozenset[str]
) -> npt.NDArray[np.int8]:
    """Action code of every row of one stay, decided in order against a state built from the engine's own events."""
    lo = int(data.starts[stay])
    hi = int(data.starts[stay + 1]) if stay + 1 < len(data.starts) else data.rows
    codes = [0] * (hi - lo)
    key = patient_key(data.stay_ids[stay])
    age = float(data.ages[stay])
    unit_type = data.unit_types[stay] if data.unit_types is not None else UNIT_TYPE
    unit = UnitFacts(unit_id=data.units[stay], unit_type=unit_type)
    admitted = data.admissions[stay] if data.admissions is not None else ICU_ADMISSION
    at, measured_at = (decision_time, measurement_time) if admitted == ICU_ADMISSION else _clock(admitted)
    scores = data.scores[lo:hi].tolist()
    hours = data.hours[lo:hi].tolist()
    partial = data.partial[lo:hi].tolist()
    # Per watched kind, the hour (within the stay) of its latest measurement so far, -1 if none yet.
    measured = [
        (
            kind,
            [h if r >= 0 else -1 for h, r in zip(data.hours[rows[lo:hi]].tolist(), rows[lo:hi].tolist(), strict=True)],
        )
        for kind, rows in data.last_measured.items()
    ]
    state = InMemoryPolicyState()
    previous: str | None = None
    context: PolicyContext | None = None
    seen_at: list[int] = []
    for i, score in enumerate(scores):
        band = band_of(score, scorer.bands)
        if band == previous and band in elide:
            continue
        previous = band
        hour = hours[i]
        now = at(hour)
        latest = [seen[i] for _, seen in measured]
        if context is None or latest != seen_at:  # the context changes only with a new watched measurement
            seen_at = latest
            observed = {kind: measured_at(h) for (kind, _), h in zip(measured, latest, strict=True) if h >= 0}
            context = PolicyContext(
                hook=HOOK,
                role=ROLE,
                unit=unit,
                patient=PatientFacts(
                    key=key, encounter_id=key, age_years=None if age != age else age, observed=observed
                ),
            )
        output = RiskOutput(
            scorer_id=scorer.scorer_id,
            scorer_version=scorer.version,
            score=score,
            band=band,
            as_of=now,
            input_hash=f"replay:{key}:{hour}",
            partial=partial[i],
        )
        (evaluation,) = policy.evaluate_all([output], context, state, now)
        state.apply(evaluation.events)
        codes[i] = _CODE[evaluation.decision.action]
    return np.array(codes, dtype=np.int8)


def _clock(admitted: datetime) -> tuple[Callable[[int], datetime], Callable[[int], datetime]]:
    """`decision_time` and `measurement_time` for a stay admitted at a real instant (FHIR data)."""

    def decided(hour: int) -> datetime:
        return admitted + timedelta(hours=hour, seconds=-1)

    def measured(hour: int) -> datetime:
        return admitted + timedelta(hours=hour - 1)

    return decided, measured


# The forked workers read the replay arrays from this module global instead of receiving them pickled per task.
_SHARED: tuple[ReplayInput, ScorerInfo, Sequence[Candidate]] | None = None
_POLICIES: dict[int, tuple[RoutedPolicy, ScorerInfo, frozenset[str]]] = {}


def _prepared(index: int) -> tuple[RoutedPolicy, ScorerInfo, frozenset[str]]:
    if index not in _POLICIES:
        assert _SHARED is not None
        _, base, candidates = _SHARED
        candidate = candidates[index]
        policy = RoutedPolicy(candidate.document)
        bands = scaled_edges(base.bands, base.bands[0][1], candidate.threshold)
        scorer = ScorerInfo(base.scorer_id, base.version, bands)
        elide = frozenset(name for name, _ in bands if always_suppressed(policy, scorer.scorer_id, name))
        _POLICIES[index] = (policy, scorer, elide)
    return _POLICIES[index]


def _run_chunk(task: tuple[int, int, int]) -> tuple[int, int, npt.NDArray[np.int8]]:
    index, first, last = task
    assert _SHARED is not None
    data = _SHARED[0]
    policy, scorer, elide = _prepared(index)
    parts = [decide_stay(policy, scorer, data, s, elide) for s in range(first, last)]
    return index, int(data.starts[first]), np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)


def _tasks(candidates: int, stays: int, chunk: int) -> Iterator[tuple[int, int, int]]:
    for index in range(candidates):
        for first in range(0, stays, chunk):
            yield index, first, min(first + chunk, stays)


def run_policies(
    data: ReplayInput,
    scorer: ScorerInfo,
    candidates: Sequence[Candidate],
    *,
    workers: int | None = None,
    progress: bool = False,
) -> list[npt.NDArray[np.int8]]:
    """Per candidate, the action code of every row. `scorer.bands` carry the card's threshold as the top edge."""
    global _SHARED
    workers = workers or len(os.sched_getaffinity(0))
    stays = len(data.starts)
    chunk = max(1, min(500, stays // (workers * 8) or 1))
    tasks = list(_tasks(len(candidates), stays, chunk))
    out = [np.zeros(data.rows, dtype=np.int8) for _ in candidates]
    _SHARED = (data, scorer, candidates)
    _POLICIES.clear()
    try:
        bar = tqdm(total=data.rows * len(candidates), unit="row", disable=not progress, desc="policy pass")
        if workers == 1:
            results: Iterator[tuple[int, int, npt.NDArray[np.int8]]] = map(_run_chunk, tasks)
            for index, offset, actions in results:
                out[index][offset : offset + len(actions)] = actions
                bar.update(len(actions))
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for index, offset, actions in pool.imap_unordered(_run_chunk, tasks):
                    out[index][offset : offset + len(actions)] = actions
                    bar.update(len(actions))
        bar.close()
    finally:
        _SHARED = None
        _POLICIES.clear()
    return out
