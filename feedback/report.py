"""The feedback report: what clinicians did with the cards, as rates by scorer, route, unit, role, reason and hour,
time to first response, alerts per patient-day and the cards repeated most to one patient (polars)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import polars as pl

# The columns each input frame carries (store.feedback_store.load_feedback_frames builds them).
CARD_SCHEMA: dict[str, Any] = {
    "card_uuid": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "patient_key": pl.String,
    "scorer_id": pl.String,
    "route": pl.String,
    "unit_id": pl.String,
    "score": pl.Float64,
}
RESPONSE_SCHEMA: dict[str, Any] = {
    "card_uuid": pl.String,
    "at": pl.Datetime("us", "UTC"),
    "kind": pl.String,  # a CDS Hooks outcome or one of feedback.actions.ActionKind
    "role": pl.String,
    "reason": pl.String,
    "card_known": pl.Boolean,
}
GROUPINGS = ("scorer", "route", "unit", "role", "hour")
TOP_REPEATS = 10
TOP_UNKNOWN = 50
UNRECORDED = "unrecorded"


class ResponseClass(StrEnum):
    """What a response counts as. Acknowledging and escalating act on the alert; dismissing overrides it."""

    ACCEPTED = "accepted"
    OVERRIDDEN = "overridden"
    DEFERRED = "deferred"
    ALREADY_ADDRESSED = "already-addressed"


RESPONSE_CLASS = {
    "accepted": ResponseClass.ACCEPTED,
    "overridden": ResponseClass.OVERRIDDEN,
    "acknowledge": ResponseClass.ACCEPTED,
    "escalate": ResponseClass.ACCEPTED,
    "dismiss": ResponseClass.OVERRIDDEN,
    "defer": ResponseClass.DEFERRED,
    "already-addressed": ResponseClass.ALREADY_ADDRESSED,
}


@dataclass(frozen=True, slots=True)
class FeedbackFrames:
    """Cards shown (one row each) and every response to a card (CDS Hooks feedback and our own actions)."""

    cards: pl.DataFrame
    responses: pl.DataFrame


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    since: datetime | None
    until: datetime | None
    summary: dict[str, Any]
    rates: dict[str, pl.DataFrame]
    reasons: pl.DataFrame
    first_response: pl.DataFrame
    repeats: pl.DataFrame
    # Responses about cards we never sent, by card uuid (a uuid names a card, not a person): for someone to chase.
    unknown_cards: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "summary": self.summary,
            "rates": {name: frame.to_dicts() for name, frame in self.rates.items()},
            "reasons": self.reasons.to_dicts(),
            "first_response": self.first_response.to_dicts(),
            "repeats": self.repeats.to_dicts(),
            "unknown_cards": [
                {**row, "first_at": row["first_at"].isoformat(), "last_at": row["last_at"].isoformat()}
                for row in self.unknown_cards.to_dicts()
            ],
        }


def report_pseudonym(patient_key: str) -> str:
    """A patient as the report names them: a short hash of the (already pseudonymous) key, not joinable by eye."""
    return "pt-" + hashlib.sha256(f"feedback-report|{patient_key}".encode()).hexdigest()[:10]


def empty_frames() -> FeedbackFrames:
    return FeedbackFrames(pl.DataFrame(schema=CARD_SCHEMA), pl.DataFrame(schema=RESPONSE_SCHEMA))


def build_report(
    frames: FeedbackFrames, *, since: datetime | None = None, until: datetime | None = None
) -> FeedbackReport:
    cards = frames.cards.with_columns(pl.col("unit_id").fill_null(UNRECORDED))
    classes = pl.DataFrame(
        {"kind": list(RESPONSE_CLASS), "class": [str(c) for c in RESPONSE_CLASS.values()]},
        schema={"kind": pl.String, "class": pl.String},
    )
    responses = frames.responses.join(classes, on="kind", how="left")
    known = (
        responses.filter(pl.col("card_known"))
        .join(cards, on="card_uuid", how="inner")
        .with_columns(
            pl.col("scorer_id").alias("scorer"),
            pl.col("unit_id").alias("unit"),
            pl.col("role").fill_null(UNRECORDED),
            pl.col("at").dt.hour().alias("hour"),
        )
    )
    rates = {name: _rates(known, name) for name in GROUPINGS}
    return FeedbackReport(
        since=since,
        until=until,
        summary=_summary(cards, known, responses),
        rates=rates,
        reasons=_reasons(known),
        first_response=_first_response(cards, known),
        repeats=_repeats(cards),
        unknown_cards=_unknown_cards(responses),
    )


def _counts() -> list[pl.Expr]:
    return [
        pl.len().alias("responses"),
        (pl.col("class") == ResponseClass.OVERRIDDEN.value).sum().alias("overridden"),
        (pl.col("class") == ResponseClass.ACCEPTED.value).sum().alias("accepted"),
    ]


def _with_rates(frame: pl.DataFrame) -> pl.DataFrame:
    # No responses: no rate (null), rather than NaN, which JSON cannot carry.
    answered = pl.col("responses") > 0
    return frame.with_columns(
        pl.when(answered).then(pl.col("overridden") / pl.col("responses")).alias("override_rate"),
        pl.when(answered).then(pl.col("accepted") / pl.col("responses")).alias("acceptance_rate"),
    )


def _rates(known: pl.DataFrame, by: str) -> pl.DataFrame:
    """Override rate = overridden responses / all responses in the group; acceptance rate likewise."""
    grouped = known.group_by(by).agg(_counts()).sort(by)
    return _with_rates(grouped.rename({by: "group"}).with_columns(pl.col("group").cast(pl.String)))


def _summary(cards: pl.DataFrame, known: pl.DataFrame, responses: pl.DataFrame) -> dict[str, Any]:
    totals = _with_rates(known.select(_counts())).row(0, named=True)
    patient_days = cards.select(pl.struct("patient_key", pl.col("created_at").dt.date()).n_unique()).item()
    return {
        "cards_shown": cards.height,
        "patients": cards["patient_key"].n_unique(),
        "responses": totals["responses"],
        "overridden": totals["overridden"],
        "accepted": totals["accepted"],
        "override_rate": totals["override_rate"],
        "acceptance_rate": totals["acceptance_rate"],
        "cards_responded": known["card_uuid"].n_unique(),
        # Kept apart: responses about cards we never sent (reported, never joined to the rates).
        "unknown_card_responses": responses.filter(~pl.col("card_known")).height,
        # Cards per patient-day on which that patient was shown at least one card.
        "alerts_per_patient_day": cards.height / patient_days if patient_days else None,
    }


def _reasons(known: pl.DataFrame) -> pl.DataFrame:
    overrides = known.filter(pl.col("class") == ResponseClass.OVERRIDDEN.value)
    return (
        overrides.with_columns(pl.col("reason").fill_null(UNRECORDED))
        .group_by("reason")
        .agg(pl.len().alias("overrides"))
        .with_columns((pl.col("overrides") / max(overrides.height, 1)).alias("share"))
        .sort(["overrides", "reason"], descending=[True, False])
    )


def _first_response(cards: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """Minutes from a card being shown to its first response, per scorer (cards never answered are left out)."""
    first = known.group_by("card_uuid").agg(pl.col("at").min().alias("first_at"))
    waits = cards.join(first, on="card_uuid", how="inner").with_columns(
        ((pl.col("first_at") - pl.col("created_at")).dt.total_seconds() / 60.0).alias("minutes")
    )
    shown = cards.group_by("scorer_id").agg(pl.len().alias("cards_shown"))
    answered = waits.group_by("scorer_id").agg(
        pl.len().alias("cards_answered"),
        pl.col("minutes").median().alias("median_minutes"),
        pl.col("minutes").quantile(0.9, interpolation="nearest").alias("p90_minutes"),
    )
    return (
        shown.join(answered, on="scorer_id", how="left")
        .with_columns(pl.col("cards_answered").fill_null(0))
        .rename({"scorer_id": "scorer"})
        .sort("scorer")
    )


def _repeats(cards: pl.DataFrame) -> pl.DataFrame:
    counts = (
        cards.group_by("patient_key", "scorer_id")
        .agg(pl.len().alias("cards_shown"))
        .filter(pl.col("cards_shown") > 1)
        .sort(["cards_shown", "scorer_id", "patient_key"], descending=[True, False, False])
        .head(TOP_REPEATS)
    )
    return counts.select(
        pl.col("patient_key").map_elements(report_pseudonym, return_dtype=pl.String).alias("patient"),
        pl.col("scorer_id").alias("scorer"),
        "cards_shown",
    )


def _unknown_cards(responses: pl.DataFrame) -> pl.DataFrame:
    return (
        responses.filter(~pl.col("card_known"))
        .group_by("card_uuid")
        .agg(pl.len().alias("responses"), pl.col("at").min().alias("first_at"), pl.col("at").max().alias("last_at"))
        .sort(["responses", "card_uuid"], descending=[True, False])
        .head(TOP_UNKNOWN)
    )
