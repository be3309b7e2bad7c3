"""The pass-through policy: every scored output is surfaced; an output with no data is never shown as low risk."""

from __future__ import annotations

from datetime import UTC, datetime

from clinical.model import ClinicalContext
from policy.passthrough import PassThroughPolicy
from policy.port import Action, Indicator, Reason
from scoring.port import NO_DATA_BAND, Contribution, RiskOutput

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _output(score: float | None, band: str, *, missing: tuple[str, ...] = ()) -> RiskOutput:
    return RiskOutput(
        scorer_id="news2",
        scorer_version="1",
        score=score,
        band=band,
        as_of=NOW,
        input_hash="a" * 64,
        explanation=(Contribution("resp_rate", 3, "26 /min"),),
        partial=bool(missing),
        missing=missing,
    )


def test_a_high_band_is_surfaced_as_a_critical_card_with_its_explanation() -> None:
    decision = PassThroughPolicy().decide(_output(9, "high"), ClinicalContext(patient=None), NOW)

    assert decision.action is Action.SURFACE
    assert decision.card is not None
    assert decision.card.indicator is Indicator.CRITICAL
    assert decision.card.summary.startswith("NEWS2 9: high")
    assert "resp_rate" in decision.card.detail
    assert decision.reasons == (Reason.PASS_THROUGH,)
    assert decision.inputs_hash == "a" * 64


def test_a_partial_score_says_what_is_missing_in_the_card() -> None:
    decision = PassThroughPolicy().decide(
        _output(5, "medium", missing=("temperature",)), ClinicalContext(patient=None), NOW
    )

    assert decision.card is not None
    assert "missing temperature" in decision.card.summary
    assert Reason.PARTIAL_INPUTS in decision.reasons


def test_an_output_with_no_data_is_suppressed_not_shown_as_low_risk() -> None:
    decision = PassThroughPolicy().decide(_output(None, NO_DATA_BAND), ClinicalContext(patient=None), NOW)

    assert decision.action is Action.SUPPRESS
    assert decision.card is None
    assert decision.reasons == (Reason.NO_DATA,)


def test_a_summary_never_reaches_140_characters() -> None:
    many = tuple(f"parameter_{i}" for i in range(30))
    decision = PassThroughPolicy().decide(_output(1, "low", missing=many), ClinicalContext(patient=None), NOW)

    assert decision.card is not None
    assert len(decision.card.summary) < 140
