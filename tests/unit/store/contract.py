"""Behaviour every Repository/UnitOfWork must show; the fake (unit) and SQLAlchemy (integration) suites both
inherit it, so the fake cannot drift from the real adapter."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, timedelta, timezone

import pytest

from store.port import AuditEntry, AuditKind, UnitOfWork
from tests.unit.store import builders

_PLUS_TWO = timezone(timedelta(hours=2))


class RepositoryContract:
    """Subclasses provide a `uow` fixture over an empty store."""

    def test_a_recorded_hook_call_returns_its_response_and_can_be_fetched_by_hook_instance(
        self, uow: UnitOfWork
    ) -> None:
        call = builders.hook_call()
        with uow:
            recorded = uow.repo.record_hook_call(call)
            uow.commit()
        assert recorded.created
        with uow:
            assert uow.repo.hook_call_response("hook-1") == recorded.response == {"cards": [builders.card("card-1")]}

    def test_the_same_hook_instance_twice_keeps_the_first_response_and_one_audit_record(self, uow: UnitOfWork) -> None:
        with uow:
            first = uow.repo.record_hook_call(builders.hook_call(card_uuid="card-1"))
            uow.commit()
        retry = builders.hook_call(card_uuid="card-2", at=builders.T0 + timedelta(seconds=3))
        with uow:
            second = uow.repo.record_hook_call(retry)
            uow.commit()
        assert not second.created
        assert second.response == first.response
        with uow:
            assert uow.repo.find_card("card-2") is None
            assert [r.kind for r in uow.repo.audit_records()] == [AuditKind.HOOK_CALL]

    def test_a_surfaced_card_can_be_found_with_the_decision_and_score_behind_it(self, uow: UnitOfWork) -> None:
        with uow:
            uow.repo.record_hook_call(builders.hook_call())
            uow.commit()
        with uow:
            card = uow.repo.find_card("card-1")
        assert card is not None
        assert (card.hook_instance, card.action, card.reasons, card.policy_version) == (
            "hook-1",
            "surface",
            ("route-matched",),
            "3",
        )
        assert (card.scorer_id, card.band, card.score, card.patient_key) == ("news2", "high", 7.0, "pk-3f9a")
        assert card.body == builders.card("card-1")
        assert card.created_at == builders.T0

    def test_unknown_hook_instances_and_cards_are_not_found(self, uow: UnitOfWork) -> None:
        with uow:
            assert uow.repo.hook_call_response("never-seen") is None
            assert uow.repo.find_card("never-seen") is None

    def test_work_left_uncommitted_is_discarded(self, uow: UnitOfWork) -> None:
        with uow:
            uow.repo.record_hook_call(builders.hook_call())
        with uow:
            assert uow.repo.hook_call_response("hook-1") is None
            assert uow.repo.audit_records() == []

    def test_a_hook_call_that_fails_half_way_stores_nothing_at_all(self, uow: UnitOfWork) -> None:
        call = builders.hook_call()
        broken = builders.card("ignored")
        del broken["uuid"]
        # The suppressed result is written first, so the failure comes after rows were already added.
        results = (call.results[1], dataclasses.replace(call.results[0], card=broken))
        with uow, pytest.raises(ValueError, match="uuid"):
            uow.repo.record_hook_call(dataclasses.replace(call, results=results))
        with uow:
            assert uow.repo.hook_call_response("hook-1") is None
            assert uow.repo.audit_records() == []

    def test_the_same_feedback_twice_is_stored_once(self, uow: UnitOfWork) -> None:
        with uow:
            uow.repo.record_hook_call(builders.hook_call())
            uow.commit()
        stored = []
        for _ in range(2):
            with uow:
                stored.append(uow.repo.record_feedback(builders.feedback()))
                uow.commit()
        assert stored == [True, False]
        with uow:
            kinds = [r.kind for r in uow.repo.audit_records()]
        assert kinds == [AuditKind.HOOK_CALL, AuditKind.FEEDBACK]

    def test_the_same_feedback_in_another_timezone_is_still_the_same_feedback(self, uow: UnitOfWork) -> None:
        original = builders.feedback()
        shifted = builders.feedback(outcome_at=original.outcome_at.astimezone(UTC).astimezone(_PLUS_TWO))
        with uow:
            assert uow.repo.record_feedback(original)
            assert not uow.repo.record_feedback(shifted)
            uow.commit()

    def test_feedback_at_another_time_is_new_feedback(self, uow: UnitOfWork) -> None:
        with uow:
            assert uow.repo.record_feedback(builders.feedback())
            assert uow.repo.record_feedback(builders.feedback(outcome_at=builders.T0 + timedelta(hours=1)))
            uow.commit()

    def test_the_feedback_audit_record_keeps_the_reason_code_but_not_the_free_text_comment(
        self, uow: UnitOfWork
    ) -> None:
        with uow:
            uow.repo.record_feedback(builders.feedback())
            uow.commit()
        with uow:
            (record,) = uow.repo.audit_records()
        assert record.payload["override_reason_code"] == "already-treated"
        assert "seen by outreach team" not in repr(record.payload)

    def test_appended_audit_records_form_a_chain_that_verifies(self, uow: UnitOfWork) -> None:
        with uow:
            uow.repo.record_hook_call(builders.hook_call())
            for index in range(3):
                uow.repo.append_audit(
                    AuditEntry(actor="ops", kind="note", subject=f"n{index}", at=builders.T0, payload={"i": index})
                )
            uow.commit()
        with uow:
            records = uow.repo.audit_records()
            check = uow.repo.verify_audit_chain()
        assert [r.seq for r in records] == [1, 2, 3, 4]
        assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(records))
        assert check.ok
        assert (check.checked, check.head_seq, check.head_hash) == (4, 4, records[-1].hash)

    def test_audit_times_come_back_in_utc(self, uow: UnitOfWork) -> None:
        with uow:
            uow.repo.append_audit(
                AuditEntry(actor="ops", kind="note", subject="s", at=builders.T0.astimezone(_PLUS_TWO))
            )
            uow.commit()
        with uow:
            (record,) = uow.repo.audit_records()
        assert record.at == builders.T0
        assert record.at.utcoffset() == timedelta(0)
