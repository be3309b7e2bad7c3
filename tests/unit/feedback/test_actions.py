"""Each clinician action and its effect on the live policy, on a fake clock with the bundled deterioration policy;
duplicate, out-of-order and unknown-card delivery."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.action_service import record_action
from feedback.actions import ActionError, ActionKind, ActionStatus, ClinicianAction, DismissReason
from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from policy.port import Action, Reason
from policy.state import InMemoryPolicyState
from tests.unit.feedback.fakes import FakeActionUnitOfWork, FakeLedger, stored_card
from tests.unit.policy.support import START, FakeClock, Ward, output


@pytest.fixture
def ward() -> Ward:
    return Ward(RoutedPolicy(bundled_policy("deterioration")), FakeClock())


@pytest.fixture
def ledger(ward: Ward) -> FakeLedger:
    return FakeLedger(ward.state, cards={"card-1": stored_card("card-1")})


def act(kind: ActionKind, at: datetime, card: str = "card-1", **fields: object) -> ClinicianAction:
    defaults: dict[str, object] = {
        ActionKind.DISMISS: {"reason": DismissReason.KNOWN_CONDITION},
        ActionKind.DEFER: {"until": at + timedelta(hours=1)},
        ActionKind.ESCALATE: {"escalate_to": "rapid-response"},
    }.get(kind, {})  # type: ignore[assignment]
    return ClinicianAction(
        card_uuid=card, action=kind, at=at, user_pseudonym="staff:abc", user_role="clinician", **{**defaults, **fields}
    )


def record(ledger: FakeLedger, action: ClinicianAction, now: datetime) -> ActionStatus:
    return record_action(action, unit_of_work=lambda: FakeActionUnitOfWork(ledger), now=now).status


def test_a_dismissal_locks_the_alert_out_for_the_policy_window(ward: Ward, ledger: FakeLedger) -> None:
    assert ward.decide(output("news2", "medium")).action is Action.SURFACE
    ward.clock.advance(minutes=5)

    assert record(ledger, act(ActionKind.DISMISS, ward.clock.now), ward.clock.now) is ActionStatus.APPLIED
    ward.clock.advance(hours=3, minutes=59)
    locked = ward.decide(output("news2", "medium"))
    ward.clock.advance(minutes=2)
    after = ward.decide(output("news2", "medium"))

    assert locked.reasons == (Reason.LOCKED_OUT,)
    assert after.action is Action.SURFACE


def test_a_deferral_hides_the_alert_until_its_time_and_then_it_resurfaces(ward: Ward, ledger: FakeLedger) -> None:
    ward.decide(output("news2", "medium"))
    ward.clock.advance(minutes=5)
    until = ward.clock.now + timedelta(minutes=30)

    record(ledger, act(ActionKind.DEFER, ward.clock.now, until=until), ward.clock.now)
    ward.clock.advance(minutes=29)
    during = ward.decide(output("news2", "medium"))
    ward.clock.advance(minutes=1)
    at_until = ward.decide(output("news2", "medium"))

    assert during.reasons == (Reason.SNOOZED,)
    # Back at `until`, although the four-hour duplicate window of the first card has not ended.
    assert at_until.action is Action.SURFACE
    assert Reason.SNOOZE_EXPIRED in at_until.reasons


@pytest.mark.parametrize("kind", [ActionKind.ACKNOWLEDGE, ActionKind.ALREADY_ADDRESSED])
def test_an_acknowledgement_stops_the_escalation_ladder(ward: Ward, ledger: FakeLedger, kind: ActionKind) -> None:
    record(ledger, act(ActionKind.ESCALATE, ward.clock.now), ward.clock.now)
    ladder = ward.state.escalation("p1", "news2")
    assert ladder is not None and ladder.open
    assert [s.role for s in ladder.started.steps] == ["rapid-response"]
    ward.clock.advance(minutes=3)

    record(ledger, act(kind, ward.clock.now), ward.clock.now)

    closed = ward.state.escalation("p1", "news2")
    assert closed is not None and not closed.open
    assert ward.state.open_escalations() == ()


def test_the_same_action_delivered_twice_is_recorded_once(ward: Ward, ledger: FakeLedger) -> None:
    action = act(ActionKind.DISMISS, ward.clock.now)

    first = record(ledger, action, ward.clock.now)
    again = record(ledger, action, ward.clock.now + timedelta(seconds=30))

    assert (first, again) == (ActionStatus.APPLIED, ActionStatus.DUPLICATE)
    assert len(ledger.actions) == 1
    assert ward.state.dismissals_since("p1", ward.clock.now - timedelta(hours=1)) == 1


def test_an_older_action_arriving_late_does_not_undo_a_newer_one(ward: Ward, ledger: FakeLedger) -> None:
    ward.decide(output("news2", "medium"))
    t1, t2 = ward.clock.now + timedelta(minutes=1), ward.clock.now + timedelta(minutes=2)
    # The acknowledgement at t2 arrives first; the deferral made earlier, at t1, arrives after it.
    assert record(ledger, act(ActionKind.ACKNOWLEDGE, t2), t2) is ActionStatus.APPLIED
    late = record(ledger, act(ActionKind.DEFER, t1, until=t1 + timedelta(hours=6)), t2 + timedelta(minutes=1))

    assert late is ActionStatus.SUPERSEDED
    assert ward.state.last_snooze("p1", "news2") is None
    assert [r.superseded for r in ledger.actions] == [False, True]


def test_a_newer_action_arriving_after_an_older_one_applies(ward: Ward, ledger: FakeLedger) -> None:
    t1 = ward.clock.now + timedelta(minutes=1)
    record(ledger, act(ActionKind.DEFER, t1), t1)

    assert record(ledger, act(ActionKind.DISMISS, t1 + timedelta(minutes=1)), t1) is ActionStatus.APPLIED


def test_an_action_on_an_unknown_card_is_kept_apart_and_changes_no_state(ward: Ward, ledger: FakeLedger) -> None:
    status = record(ledger, act(ActionKind.DISMISS, ward.clock.now, card="never-sent"), ward.clock.now)

    assert status is ActionStatus.UNKNOWN_CARD
    assert [(r.action.card_uuid, r.card) for r in ledger.actions] == [("never-sent", None)]
    assert ledger.events == []


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        (ActionKind.DISMISS, {"reason": None}, "coded reason"),
        (ActionKind.ACKNOWLEDGE, {"reason": DismissReason.OTHER}, "coded reason"),
        (ActionKind.DEFER, {"until": None}, "until"),
        (ActionKind.DEFER, {"until": datetime(2000, 1, 1).astimezone()}, "after it was made"),
        (ActionKind.ESCALATE, {"escalate_to": ""}, "escalate_to"),
        (ActionKind.ACKNOWLEDGE, {"at": datetime(2026, 1, 1)}, "UTC offset"),  # noqa: DTZ001 -- naive on purpose
    ],
)
def test_an_incomplete_or_contradictory_action_is_refused(
    kind: ActionKind, fields: dict[str, object], message: str, ward: Ward
) -> None:
    with pytest.raises(ActionError, match=message):
        act(kind, fields.pop("at", ward.clock.now), **fields)  # type: ignore[arg-type]


KINDS = [ActionKind.ACKNOWLEDGE, ActionKind.DISMISS, ActionKind.DEFER, ActionKind.ESCALATE]


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 120), min_size=1, max_size=6, unique=True),
    kinds=st.lists(st.sampled_from(KINDS), min_size=6, max_size=6),
    order=st.randoms(use_true_random=False),
    resend=st.lists(st.integers(0, 5), max_size=3),
)
def test_whatever_the_arrival_order_the_newest_action_is_the_last_to_change_the_state(
    offsets: list[int], kinds: list[ActionKind], order: random.Random, resend: list[int]
) -> None:
    ledger = FakeLedger(InMemoryPolicyState(), cards={"card-1": stored_card("card-1")})
    actions = [act(kind, START + timedelta(minutes=m)) for m, kind in zip(offsets, kinds, strict=False)]
    deliveries = actions + [actions[i % len(actions)] for i in resend]
    order.shuffle(deliveries)

    statuses = [record(ledger, action, START) for action in deliveries]

    newest = max(actions, key=lambda a: a.at)
    assert len(ledger.actions) == len(actions)
    assert statuses.count(ActionStatus.DUPLICATE) == len(deliveries) - len(actions)
    # The events appended last are the newest action's own: the state reads "latest" as the newest action left it.
    assert ledger.events[-1].at == newest.at
    assert [r.superseded for r in ledger.actions if r.action == newest] == [False]
