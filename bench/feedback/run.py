"""Feedback report benchmark: 100,000 feedback rows (CDS Hooks feedback and clinicians' actions) on their cards,
in a fresh SQLite database, read and analysed, against reading the same rows raw, in the same run.

    python -m bench.feedback.run [--responses 100000] [--cards 40000] [--patients 2000]

Prints figures (load, analysis, HTML rendering, and the ratio of the whole report to the raw read); asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, insert, select

from feedback.report import build_report
from feedback.report_render import render_csv, render_html
from store import migrate
from store.db import make_engine
from store.feedback_store import load_feedback_frames
from store.repository import SqlUnitOfWork
from store.tables import CardActionRow, CardRow, DecisionRow, FeedbackRow, PolicyEventRow, RiskOutputRow

START = datetime(2026, 10, 1, tzinfo=UTC)
SCORERS = ("news2", "qsofa", "sirs", "sepsis-hgb")
ROUTES = ("ward-medium", "ward-high", "icu", "sepsis")
UNITS = ("4N", "5S", "ICU1", "ED")
ACTIONS = ("acknowledge", "dismiss", "defer", "escalate", "already-addressed")
REASONS = ("not-clinically-relevant", "known-condition", "data-error", "too-frequent", "other")
T = TypeVar("T")


def populate(engine: Engine, *, cards: int, responses: int, patients: int, seed: int) -> None:
    """Risk outputs, decisions, cards and their AlertSurfaced events, then responses spread over the cards: 60% as
    CDS Hooks feedback, 40% as actions, 1% of them about cards never sent."""
    rng = random.Random(seed)
    outputs: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    card_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    shown_at: list[datetime] = []
    for i in range(1, cards + 1):
        at = START + timedelta(minutes=rng.randrange(60 * 24 * 30))
        shown_at.append(at)
        scorer = rng.choice(SCORERS)
        outputs.append(
            {"id": i, "hook_instance": f"h{i}", "scorer_id": scorer, "scorer_version": "1", "score": rng.random() * 10,
             "band": "medium", "partial": False, "missing": [], "explanation": [], "features": {},
             "input_hash": "0" * 64, "as_of": at, "patient_key": f"pk{rng.randrange(patients):05d}",
             "encounter_id": None, "recorded_at": at}
        )  # fmt: skip
        decisions.append(
            {"id": i, "risk_output_id": i, "action": "surface", "reasons": [], "policy_id": "deterioration",
             "policy_version": "1", "route": rng.choice(ROUTES), "inputs_hash": "0" * 64, "decided_at": at}
        )  # fmt: skip
        card_rows.append(
            {"id": i, "uuid": f"card-{i:08d}", "decision_id": i, "hook_instance": f"h{i}", "service_id": "s",
             "body": {}, "created_at": at}
        )  # fmt: skip
        events.append(
            {"at": at, "kind": "AlertSurfaced", "patient_key": outputs[-1]["patient_key"], "alert_key": scorer,
             "unit_id": rng.choice(UNITS), "interruptive": True, "payload": {}, "decision_id": i}
        )  # fmt: skip
    feedback: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for j in range(responses):
        i = rng.randrange(1, cards + 1)
        uuid = f"card-{i:08d}" if rng.random() > 0.01 else f"ghost-{j}"
        at = shown_at[i - 1] + timedelta(seconds=rng.randrange(1, 7200), microseconds=j)
        if rng.random() < 0.6:
            outcome = rng.choice(("accepted", "overridden"))
            reason = {"reason": {"code": rng.choice(REASONS)}} if outcome == "overridden" else None
            feedback.append(
                {"card_uuid": uuid, "outcome": outcome, "outcome_at": at, "accepted_suggestions": [],
                 "override_reason": reason, "user_pseudonym": None, "received_at": at}
            )  # fmt: skip
        else:
            kind = rng.choice(ACTIONS)
            actions.append(
                {"card_uuid": uuid, "action": kind, "acted_at": at, "received_at": at, "user_pseudonym": "staff:x",
                 "user_role": rng.choice(("clinician", "informaticist")), "card_known": not uuid.startswith("g"),
                 "reason_code": rng.choice(REASONS) if kind == "dismiss" else None, "superseded": False}
            )  # fmt: skip
    with engine.begin() as connection:
        for table, rows in (
            (RiskOutputRow, outputs),
            (DecisionRow, decisions),
            (CardRow, card_rows),
            (PolicyEventRow, events),
            (FeedbackRow, feedback),
            (CardActionRow, actions),
        ):
            connection.execute(insert(table), rows)


def timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def raw_read(engine: Engine) -> int:
    with engine.connect() as connection:
        return sum(len(connection.execute(select(table)).all()) for table in (FeedbackRow, CardActionRow, CardRow))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--cards", type=int, default=40_000)
    parser.add_argument("--patients", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        _, generate_s = timed(
            lambda: populate(engine, **{k: getattr(args, k) for k in ("cards", "responses", "patients", "seed")})
        )
        rows, raw_s = timed(lambda: raw_read(engine))

        def load() -> Any:
            with SqlUnitOfWork(engine) as uow:
                return load_feedback_frames(uow)

        frames, load_s = timed(load)
        report, analyse_s = timed(lambda: build_report(frames))
        _, html_s = timed(lambda: (render_html(report), render_csv(report)))
        engine.dispose()
    total = load_s + analyse_s + html_s
    print(f"feedback report: {frames.responses.height:,} responses on {frames.cards.height:,} cards (SQLite)")
    print(f"  generate {generate_s:.2f} s (not part of the report)")
    print(f"  baseline: raw read of the same {rows:,} rows {raw_s:.2f} s")
    print(f"  load {load_s:.2f} s, analyse (polars) {analyse_s:.2f} s, render html+csv {html_s:.2f} s")
    print(f"  report total {total:.2f} s; ratio to the raw read {total / raw_s:.2f}")
    print(f"  override rate {report.summary['override_rate']:.3f}, alerts/patient-day "
          f"{report.summary['alerts_per_patient_day']:.2f}, unknown-card responses "
          f"{report.summary['unknown_card_responses']:,}")  # fmt: skip


if __name__ == "__main__":
    main()
