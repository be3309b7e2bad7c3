"""Threshold advice: for one scorer, how the override rate (live feedback) and missed events (replayed labels) move
with the threshold, and a candidate threshold to try in shadow mode (never to switch on directly)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from feedback.report import RESPONSE_CLASS, FeedbackFrames, ResponseClass
from shadow.metrics import stay_stats

GRID_POINTS = 12


@dataclass(frozen=True, slots=True)
class ThresholdAdvice:
    scorer: str
    current: float | None
    candidate: float | None
    reason: str
    # One row per threshold: cards and responses that would still be shown, override rate; with replayed labels
    # also alerts per patient-day, events and events missed (score at or above the threshold alerts).
    table: pl.DataFrame


def advise(
    frames: FeedbackFrames,
    *,
    scorer: str,
    replay_rows: pl.DataFrame | None = None,
    current: float | None = None,
    max_extra_missed: int = 0,
    grid: tuple[float, ...] | None = None,
) -> ThresholdAdvice:
    """The candidate is the highest threshold at or above the current one that misses at most `max_extra_missed`
    more events than the current one does on the replayed stays: fewer alerts (and so, usually, fewer overrides)
    without losing catches. Without labels there are no missed events to weigh, and no candidate is named."""
    shown = _shown_cards(frames, scorer)
    if current is None and shown.height:
        current = float(shown["score"].min())  # type: ignore[arg-type]
    thresholds = grid or _grid(shown, replay_rows, current)
    table = pl.DataFrame([_feedback_at(shown, t) for t in thresholds])
    if replay_rows is not None and replay_rows.height:
        table = table.join(pl.DataFrame([_replay_at(replay_rows, t) for t in thresholds]), on="threshold")
    candidate, reason = _choose(table, scorer, current, max_extra_missed)
    return ThresholdAdvice(scorer, current, candidate, reason, table.sort("threshold"))


def _shown_cards(frames: FeedbackFrames, scorer: str) -> pl.DataFrame:
    """This scorer's cards with a score, each with its responses classed (overridden or not)."""
    overridden = [kind for kind, cls in RESPONSE_CLASS.items() if cls is ResponseClass.OVERRIDDEN]
    answers = (
        frames.responses.filter(pl.col("card_known"))
        .group_by("card_uuid")
        .agg(pl.len().alias("responses"), pl.col("kind").is_in(overridden).sum().alias("overridden"))
    )
    cards = frames.cards.filter((pl.col("scorer_id") == scorer) & pl.col("score").is_not_null())
    return cards.join(answers, on="card_uuid", how="left").with_columns(
        pl.col("responses").fill_null(0), pl.col("overridden").fill_null(0)
    )


def _grid(shown: pl.DataFrame, rows: pl.DataFrame | None, current: float | None) -> tuple[float, ...]:
    scores = [shown["score"].to_numpy()]
    if rows is not None and rows.height:
        scores.append(rows["score"].drop_nulls().to_numpy())
    pooled = np.concatenate(scores).astype(np.float64)
    pooled = pooled[np.isfinite(pooled)]
    points = np.quantile(pooled, np.linspace(0.0, 0.99, GRID_POINTS)) if len(pooled) else np.zeros(0)
    rounded = {float(f"{p:.3g}") for p in points} | ({current} if current is not None else set())
    return tuple(sorted(rounded))


def _feedback_at(shown: pl.DataFrame, threshold: float) -> dict[str, float | int | None]:
    kept = shown.filter(pl.col("score") >= threshold)
    responses, overridden = int(kept["responses"].sum()), int(kept["overridden"].sum())
    return {
        "threshold": threshold,
        "cards_shown": kept.height,
        "responses": responses,
        "overridden": overridden,
        "override_rate": overridden / responses if responses else None,
    }


def _replay_at(rows: pl.DataFrame, threshold: float) -> dict[str, float | int]:
    patients = rows["patient"].to_numpy()
    starts = np.flatnonzero(np.r_[True, patients[1:] != patients[:-1]]).astype(np.int64)
    scores = rows["score"].fill_null(-np.inf).to_numpy()
    stats = stay_stats(rows["sepsis_label"].to_numpy(), scores >= threshold, starts)
    events, caught = int(stats.septic.sum()), int(stats.caught.sum())
    return {
        "threshold": threshold,
        "alerts_per_patient_day": float(stats.alerts.sum() * 24.0 / stats.hours.sum()),
        "events": events,
        "missed_events": events - caught,
    }


def _choose(table: pl.DataFrame, scorer: str, current: float | None, max_extra_missed: int) -> tuple[float | None, str]:
    if current is None:
        return None, f"no {scorer} cards with a score were shown and no current threshold was given"
    if "missed_events" not in table.columns:
        return None, "no replayed labels (--replay): missed events are unknown, so no threshold is suggested"
    baseline = table.filter(pl.col("threshold") == current).row(0, named=True)
    allowed = baseline["missed_events"] + max_extra_missed
    eligible = table.filter((pl.col("threshold") >= current) & (pl.col("missed_events") <= allowed))
    best = eligible.sort("threshold").row(-1, named=True)
    if best["threshold"] == current:
        return (
            None,
            f"no threshold above {current:g} keeps missed events within {allowed} (now {baseline['missed_events']})",
        )

    def rate(row: dict[str, object]) -> str:
        value = row["override_rate"]
        return "no responses" if value is None else f"{value:.1%} overridden"

    return best["threshold"], (
        f"candidate {best['threshold']:g} for shadow mode: {best['alerts_per_patient_day']:.2f} vs "
        f"{baseline['alerts_per_patient_day']:.2f} alerts per patient-day, {best['missed_events']} vs "
        f"{baseline['missed_events']} of {baseline['events']} events missed, {rate(best)} vs {rate(baseline)} "
        f"at {current:g}"
    )
