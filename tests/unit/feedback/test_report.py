"""The feedback report's figures on a small history worked out by hand, and what its renderings leave out."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from feedback.report import (
    CARD_SCHEMA,
    RESPONSE_SCHEMA,
    FeedbackFrames,
    FeedbackReport,
    build_report,
    empty_frames,
    report_pseudonym,
)
from feedback.report_render import render_csv, render_html

PATIENT_A, PATIENT_B = "pk-alpha-7f3e", "pk-bravo-19c2"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def frames() -> FeedbackFrames:
    cards = pl.DataFrame(
        [
            ("c1", at(1, 8), PATIENT_A, "news2", "ward", "4N", 5.0),
            ("c2", at(1, 12), PATIENT_A, "news2", "ward", "4N", 6.0),
            ("c3", at(2, 9), PATIENT_A, "news2", "ward", "4N", 5.0),
            ("c4", at(1, 10), PATIENT_B, "sepsis", "icu", None, 0.4),
            ("c5", at(1, 22), PATIENT_B, "qsofa", "icu", "ICU1", 2.0),
        ],
        schema=CARD_SCHEMA,
        orient="row",
    )
    responses = pl.DataFrame(
        [
            ("c1", at(1, 8, 10), "dismiss", "clinician", "too-frequent", True),
            ("c1", at(1, 8, 30), "acknowledge", "clinician", None, True),
            ("c2", at(1, 12, 20), "overridden", None, "already-treated", True),
            ("c3", at(2, 9, 5), "accepted", None, None, True),
            ("c4", at(1, 10, 40), "defer", "clinician", None, True),
            ("c4", at(1, 10, 50), "escalate", "informaticist", None, True),
            ("ghost-1", at(1, 11), "dismiss", "clinician", "other", False),
            ("ghost-2", at(1, 11), "overridden", None, None, False),
        ],
        schema=RESPONSE_SCHEMA,
        orient="row",
    )
    return FeedbackFrames(cards, responses)


@pytest.fixture(scope="module")
def report() -> FeedbackReport:
    return build_report(frames())


def rates(report: FeedbackReport, by: str) -> dict[str, tuple[int, int, int]]:
    return {
        r["group"]: (r["responses"], r["overridden"], r["accepted"]) for r in report.rates[by].iter_rows(named=True)
    }


def test_the_summary_counts_cards_responses_and_patient_days(report: FeedbackReport) -> None:
    s = report.summary
    assert (s["cards_shown"], s["patients"], s["responses"], s["cards_responded"]) == (5, 2, 6, 4)
    assert (s["overridden"], s["accepted"]) == (2, 3)
    assert s["override_rate"] == pytest.approx(2 / 6)
    assert s["acceptance_rate"] == pytest.approx(3 / 6)
    # Patient A on 1 and 2 March, patient B on 1 March: five cards over three patient-days.
    assert s["alerts_per_patient_day"] == pytest.approx(5 / 3)


def test_responses_about_unknown_cards_are_counted_apart_and_left_out_of_the_rates(report: FeedbackReport) -> None:
    assert report.summary["unknown_card_responses"] == 2
    assert report.unknown_cards.select("card_uuid", "responses").rows() == [("ghost-1", 1), ("ghost-2", 1)]
    assert sum(n for n, _, _ in rates(report, "scorer").values()) == 6


def test_rates_by_scorer_route_unit_role_and_hour(report: FeedbackReport) -> None:
    assert rates(report, "scorer") == {"news2": (4, 2, 2), "sepsis": (2, 0, 1)}
    assert rates(report, "route") == {"icu": (2, 0, 1), "ward": (4, 2, 2)}
    assert rates(report, "unit") == {"4N": (4, 2, 2), "unrecorded": (2, 0, 1)}
    assert rates(report, "role") == {"clinician": (3, 1, 1), "informaticist": (1, 0, 1), "unrecorded": (2, 1, 1)}
    assert rates(report, "hour") == {"8": (2, 1, 1), "9": (1, 0, 1), "10": (2, 0, 1), "12": (1, 1, 0)}
    news2 = report.rates["scorer"].row(0, named=True)
    assert (news2["override_rate"], news2["acceptance_rate"]) == (0.5, 0.5)


def test_override_reasons_are_shared_out_across_overrides(report: FeedbackReport) -> None:
    assert report.reasons.rows() == [("already-treated", 1, 0.5), ("too-frequent", 1, 0.5)]


def test_time_to_first_response_is_measured_from_the_card_to_its_earliest_answer(report: FeedbackReport) -> None:
    by_scorer = {r["scorer"]: r for r in report.first_response.iter_rows(named=True)}
    # news2 waits: 10 min (c1, its dismissal; not the later acknowledgement), 20 min (c2), 5 min (c3).
    assert by_scorer["news2"]["cards_shown"] == 3 and by_scorer["news2"]["cards_answered"] == 3
    assert (by_scorer["news2"]["median_minutes"], by_scorer["news2"]["p90_minutes"]) == (10.0, 20.0)
    assert by_scorer["sepsis"]["median_minutes"] == 40.0
    assert (by_scorer["qsofa"]["cards_answered"], by_scorer["qsofa"]["median_minutes"]) == (0, None)


def test_the_cards_repeated_most_to_one_patient_name_the_patient_by_a_report_pseudonym(
    report: FeedbackReport,
) -> None:
    assert report.repeats.rows() == [(report_pseudonym(PATIENT_A), "news2", 3)]


def test_no_patient_key_or_user_appears_in_any_rendering(report: FeedbackReport) -> None:
    html, csv = render_html(report), render_csv(report)
    for text in (html, csv, str(report.to_dict())):
        assert PATIENT_A not in text and PATIENT_B not in text
    assert report_pseudonym(PATIENT_A) in html and "<svg" in html and "<script" not in html


def test_the_csv_has_one_figure_per_line(report: FeedbackReport) -> None:
    lines = render_csv(report).splitlines()
    assert lines[0] == "section,group,measure,value"
    assert "by_scorer,news2,override_rate,0.5" in lines
    assert "summary,,cards_shown,5" in lines


def test_an_empty_history_gives_an_empty_report_not_an_error() -> None:
    empty = build_report(empty_frames())

    assert empty.summary["cards_shown"] == 0 and empty.summary["override_rate"] is None
    assert "Feedback report" in render_html(empty)
