"""The SQL action ledger under concurrent delivery: the same action sent by several workers at once is applied once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import Engine, func, select

from feedback.action_service import record_action
from feedback.actions import ActionKind, ActionStatus, ClinicianAction
from store.feedback_store import action_unit_of_work
from store.policy_state import SqlPolicyUnitOfWork
from store.tables import CardActionRow, PolicyEventRow
from tests.unit.store import builders

WORKERS = 6


def test_the_same_action_delivered_concurrently_is_applied_once(migrated_engine: Engine) -> None:
    with SqlPolicyUnitOfWork(migrated_engine) as uow:
        uow.repo.record_hook_call(builders.hook_call(card_uuid="card-race"))
        uow.commit()
    at = builders.T0 + timedelta(minutes=3)
    action = ClinicianAction("card-race", ActionKind.ACKNOWLEDGE, at, user_pseudonym="staff:1", user_role="clinician")
    units = action_unit_of_work(lambda: SqlPolicyUnitOfWork(migrated_engine))

    with ThreadPoolExecutor(WORKERS) as pool:
        statuses = list(pool.map(lambda _: record_action(action, unit_of_work=units, now=at).status, range(WORKERS)))

    assert sorted(statuses) == sorted([ActionStatus.APPLIED] + [ActionStatus.DUPLICATE] * (WORKERS - 1))
    with migrated_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(CardActionRow)) == 1
        kinds = connection.scalars(select(PolicyEventRow.kind)).all()
    assert kinds == ["AlertAcknowledged"]
