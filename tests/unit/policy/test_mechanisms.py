"""Each muting mechanism on a fake clock, with the bundled deterioration policy: what a clinician would notice."""

from __future__ import annotations

import pytest

from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from policy.events import AlertDismissed, AlertSnoozed
from policy.port import Action, Indicator, Reason
from policy.silences import SilenceRefusedError, create_silence, expire_silence
from tests.unit.policy.support import START, FakeClock, Ward, context, output, policy


@pytest.fixture
def ward() -> Ward:
    return Ward(RoutedPolicy(bundled_policy("deterioration")), FakeClock())


def test_the_same_warning_is_shown_once_per_dedup_window(ward: Ward) -> None:
    first = ward.decide(output("news2", "medium"))
    ward.clock.advance(hours=3, minutes=59)
    repeat = ward.decide(output("news2", "medium"))
    ward.clock.advance(minutes=2)
    after = ward.decide(output("news2", "medium"))

    assert first.action is Action.SURFACE
    assert repeat.action is Action.SUPPRESS and repeat.reasons == (Reason.DUPLICATE,)
    assert after.action is Action.SURFACE


def test_dedup_is_per_patient(ward: Ward) -> None:
    ward.decide(output("news2", "medium"), context(patient="p1"))

    assert ward.decide(output("news2", "medium"), context(patient="p2")).action is Action.SURFACE


def test_a_worsening_band_re_alerts_inside_the_dedup_window(ward: Ward) -> None:
    ward.decide(output("news2", "low-medium", 3))
    ward.clock.advance(minutes=30)

    decision = ward.decide(output("news2", "medium", 5))

    assert decision.action is Action.SURFACE
    assert Reason.WORSENED in decision.reasons


def test_a_dismissed_warning_is_locked_out_four_hours_and_a_critical_one_hour(ward: Ward) -> None:
    ward.decide(output("news2", "medium"))
    ward.record(AlertDismissed("p1", "news2", "medium", Indicator.WARNING, ward.clock.now))
    ward.decide(output("news2", "high", 8), context(patient="p2"))
    ward.record(AlertDismissed("p2", "news2", "high", Indicator.CRITICAL, ward.clock.now))

    ward.clock.advance(minutes=61)
    assert ward.decide(output("news2", "medium")).reasons == (Reason.LOCKED_OUT,)
    assert ward.decide(output("news2", "high", 8), context(patient="p2")).action is Action.ESCALATE
    ward.clock.advance(hours=3)
    assert ward.decide(output("news2", "medium")).action is Action.SURFACE


def test_a_worse_band_breaks_through_a_lockout(ward: Ward) -> None:
    ward.decide(output("news2", "medium"))
    ward.record(AlertDismissed("p1", "news2", "medium", Indicator.WARNING, ward.clock.now))
    ward.clock.advance(minutes=10)

    decision = ward.decide(output("news2", "high", 8))

    assert decision.action is Action.ESCALATE
    assert Reason.WORSENED in decision.reasons


def test_a_snoozed_alert_re_surfaces_when_the_snooze_expires(ward: Ward) -> None:
    ward.decide(output("news2", "medium"))
    ward.record(AlertSnoozed("p1", "news2", ward.clock.now.replace(minute=30), ward.clock.now))
    ward.clock.advance(minutes=20)
    snoozed = ward.decide(output("news2", "medium"))
    ward.clock.advance(minutes=11)
    back = ward.decide(output("news2", "medium"))
    ward.clock.advance(minutes=5)
    then = ward.decide(output("news2", "medium"))

    assert snoozed.reasons == (Reason.SNOOZED,)
    assert back.action is Action.SURFACE and Reason.SNOOZE_EXPIRED in back.reasons
    # Shown again once; after that the dedup window runs from the new card.
    assert then.reasons == (Reason.DUPLICATE,)


def test_comfort_care_mutes_every_deterioration_alert(ward: Ward) -> None:
    for scorer, band in [("news2", "high"), ("qsofa", "positive"), ("sirs", "positive"), ("sepsis-hgb", "high")]:
        decision = ward.decide(output(scorer, band), context(comfort_care=True))
        assert decision.action is Action.SUPPRESS
        assert decision.reasons == (Reason.INHIBITED, Reason.COMFORT_CARE)


def test_a_sepsis_alert_mutes_news2_medium_but_not_news2_high(ward: Ward) -> None:
    sepsis = output("sepsis-hgb", "high", 0.9)

    medium = ward.decide(output("news2", "medium"), sepsis=sepsis)
    high = ward.decide(output("news2", "high", 8), sepsis=sepsis)

    assert medium.reasons == (Reason.INHIBITED,)
    assert high.action is Action.ESCALATE
    assert ward.last is not None
    assert any(s["mechanism"] == "inhibition" for s in ward.last.trace.to_dict()["mechanisms"])


def test_an_alert_does_not_inhibit_itself() -> None:
    ward = Ward(
        policy(
            """
id: self
version: "1"
inhibit_rules:
  - {source: {scorer: sepsis-hgb, band: high}, target: {scorer: sepsis-hgb}}
"""
        )
    )
    first = output("sepsis-hgb", "high", 0.9)

    assert ward.decide(first, again=first).action is Action.SURFACE
    ward.clock.advance(minutes=5)
    # Its own earlier card does not mute it either (the dedup window does; there is none here).
    assert ward.decide(output("sepsis-hgb", "high", 0.9)).action is Action.SURFACE


def test_a_silence_mutes_what_it_matches_until_it_is_expired(ward: Ward) -> None:
    created = create_silence(
        silence_id="s1",
        match={"scorer": "news2", "unit_type": "ward"},
        starts_at=ward.clock.now,
        ends_at=ward.clock.now.replace(hour=12),
        author="informaticist",
        comment="monitor recalibration",
        now=ward.clock.now,
    )
    ward.record(created)

    muted = ward.decide(output("news2", "medium"))
    other_unit = ward.decide(output("news2", "medium"), context(patient="p2", unit_type="icu"))
    ward.clock.advance(minutes=5)
    ward.record(expire_silence(created.silence, ward.clock.now))
    after = ward.decide(output("news2", "medium"))

    assert muted.reasons == (Reason.SILENCED,)
    assert other_unit.action is Action.SURFACE
    assert after.action is Action.SURFACE
    assert [s.ends_at for s in ward.state.all_silences()] == [ward.clock.now]


def test_a_silence_ends_by_itself_at_its_end_time(ward: Ward) -> None:
    ward.record(
        create_silence(
            silence_id="s1",
            match={"scorer": "news2"},
            starts_at=ward.clock.now,
            ends_at=ward.clock.now.replace(minute=30),
            author="a",
            comment="c",
            now=ward.clock.now,
        )
    )
    ward.clock.advance(minutes=30)

    assert ward.decide(output("news2", "medium")).action is Action.SURFACE


@pytest.mark.parametrize(
    ("author", "comment", "match", "problem"),
    [
        ("", "why", {"scorer": "news2"}, "author"),
        ("me", " ", {"scorer": "news2"}, "comment"),
        ("me", "why", {}, "at least one matcher"),
        ("me", "why", {"bnad": "high"}, "match.bnad"),
    ],
)
def test_a_silence_needs_an_author_a_comment_and_a_matcher(
    author: str, comment: str, match: dict[str, str], problem: str
) -> None:
    with pytest.raises(SilenceRefusedError, match=problem):
        create_silence(
            silence_id="s",
            match=match,
            starts_at=START,
            ends_at=START.replace(hour=11),
            author=author,
            comment=comment,
            now=START,
        )
