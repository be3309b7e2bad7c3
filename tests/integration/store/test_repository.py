"""The SQLAlchemy repository on real databases: the shared contract, what lands in the tables, tamper evidence
in the audit chain, and appends from concurrent connections."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError

from store.db import make_session_factory
from store.port import AuditEntry, ChainFault
from store.repository import SqlUnitOfWork
from store.tables import (
    AuditRow,
    CardRow,
    DecisionRow,
    FeedbackRow,
    ImmutableRowError,
    PolicyVersionRow,
    RiskOutputRow,
)
from tests.unit.store import builders
from tests.unit.store.contract import RepositoryContract


class TestSqlRepository(RepositoryContract):
    """The contract, on each configured backend (the `uow` fixture comes from tests/conftest.py)."""


def _count(engine: Engine, model: type[object]) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def _append_notes(uow: SqlUnitOfWork, count: int, actor: str = "ops") -> None:
    for index in range(count):
        with uow:
            uow.repo.append_audit(
                AuditEntry(
                    actor=actor,
                    kind="note",
                    subject=f"note:{index}",
                    at=builders.T0 + timedelta(seconds=index),
                    payload={"index": index, "ratio": 0.25, "whole": 3.0},
                )
            )
            uow.commit()


def test_a_hook_call_stores_its_risk_outputs_decisions_and_cards(uow: SqlUnitOfWork, migrated_engine: Engine) -> None:
    with uow:
        uow.repo.record_hook_call(builders.hook_call())
        uow.commit()
    session = make_session_factory(migrated_engine)()
    try:
        outputs = {row.scorer_id: row for row in session.scalars(select(RiskOutputRow))}
        decisions = {row.risk_output.scorer_id: row for row in session.scalars(select(DecisionRow))}
        (card,) = session.scalars(select(CardRow))
    finally:
        session.close()
    assert set(outputs) == {"news2", "qsofa"}
    news2 = outputs["news2"]
    assert (news2.score, news2.band, news2.partial, news2.as_of) == (7.0, "high", False, builders.T0)
    assert news2.features["respiratory_rate"]["provenance"]["resource_id"] == "obs-1"
    assert news2.explanation == [{"feature": "respiratory_rate", "points": 3.0, "detail": "rate 26/min scores 3"}]
    assert (outputs["qsofa"].partial, outputs["qsofa"].missing, outputs["qsofa"].score) == (True, ["spo2"], None)
    assert decisions["qsofa"].action == "suppress"
    assert decisions["qsofa"].reasons == ["partial-inputs"]
    assert card.decision_id == decisions["news2"].id
    assert card.uuid == "card-1"


def test_the_same_feedback_twice_leaves_one_row(uow: SqlUnitOfWork, migrated_engine: Engine) -> None:
    for _ in range(2):
        with uow:
            uow.repo.record_feedback(builders.feedback())
            uow.commit()
    assert _count(migrated_engine, FeedbackRow) == 1


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "fault"),
    [
        ("UPDATE audit_log SET subject = 'note:forged' WHERE seq = 3", 3, ChainFault.EDITED),
        ("DELETE FROM audit_log WHERE seq = 3", 3, ChainFault.REMOVED),
        (
            "UPDATE audit_log SET seq = -1 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4;"
            " UPDATE audit_log SET seq = 4 WHERE seq = -1",
            3,
            ChainFault.REORDERED,
        ),
    ],
    ids=["edited", "removed", "reordered"],
)
def test_verification_names_the_tampered_record_and_how(
    uow: SqlUnitOfWork, migrated_engine: Engine, tamper: str, bad_seq: int, fault: ChainFault
) -> None:
    _append_notes(uow, 5)
    with uow:
        assert uow.repo.verify_audit_chain().ok
    with migrated_engine.begin() as connection:
        for statement in tamper.split(";"):
            connection.execute(text(statement))
    with uow:
        check = uow.repo.verify_audit_chain()
    assert (check.bad_seq, check.fault) == (bad_seq, fault)


def test_a_payload_edited_inside_its_json_is_caught(uow: SqlUnitOfWork, migrated_engine: Engine) -> None:
    _append_notes(uow, 3)
    with uow:
        (record,) = uow.repo.audit_records(after_seq=1, limit=1)
    with migrated_engine.begin() as connection:
        connection.execute(update(AuditRow).where(AuditRow.seq == 2).values(payload={**record.payload, "index": 7}))
    with uow:
        check = uow.repo.verify_audit_chain()
    assert (check.bad_seq, check.fault, check.head_seq) == (2, ChainFault.EDITED, 1)


def test_concurrent_appends_from_separate_connections_keep_one_valid_chain(
    uow: SqlUnitOfWork, migrated_engine: Engine
) -> None:
    per_thread, threads = 15, 3
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def _worker(actor: str) -> None:
        try:
            start.wait()
            _append_notes(SqlUnitOfWork(migrated_engine), per_thread, actor=actor)
        except BaseException as error:  # handed to the main thread, which asserts there were none
            errors.append(error)

    workers = [threading.Thread(target=_worker, args=(f"worker-{n}",)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    with uow:
        check = uow.repo.verify_audit_chain()
        actors = {record.actor for record in uow.repo.audit_records()}
    assert check.ok
    assert check.checked == per_thread * threads
    assert actors == {f"worker-{n}" for n in range(threads)}


def test_concurrent_calls_with_one_hook_instance_store_it_once(uow: SqlUnitOfWork, migrated_engine: Engine) -> None:
    results: list[bool] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def _worker(card_uuid: str) -> None:
        try:
            start.wait()
            worker_uow = SqlUnitOfWork(migrated_engine)
            with worker_uow:
                results.append(worker_uow.repo.record_hook_call(builders.hook_call(card_uuid=card_uuid)).created)
                worker_uow.commit()
        except BaseException as error:  # handed to the main thread, which asserts there were none
            errors.append(error)

    workers = [threading.Thread(target=_worker, args=(f"card-{n}",)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    assert sorted(results) == [False, True]
    assert _count(migrated_engine, CardRow) == 1
    with uow:
        assert len(uow.repo.audit_records()) == 1


def test_audit_rows_cannot_be_changed_through_the_orm(uow: SqlUnitOfWork, migrated_engine: Engine) -> None:
    _append_notes(uow, 1)
    session = make_session_factory(migrated_engine)()
    try:
        row = session.scalars(select(AuditRow)).one()
        row.subject = "note:forged"
        with pytest.raises(ImmutableRowError):
            session.flush()
    finally:
        session.rollback()
        session.close()


def _policy(version: str, *, active: bool = False) -> PolicyVersionRow:
    return PolicyVersionRow(
        policy_id="deterioration",
        version=version,
        content="routes: []",
        content_hash="c" * 64,
        author="clinical-safety",
        comment="initial",
        created_at=builders.T0,
        active=active,
        activated_at=builders.T0 if active else None,
    )


def test_policy_versions_can_be_activated_but_not_rewritten(migrated_engine: Engine) -> None:
    session = make_session_factory(migrated_engine)()
    try:
        row = _policy("1")
        session.add(row)
        session.commit()
        row.active, row.activated_at = True, builders.T0
        session.commit()
        row.content = "routes: [everything]"
        with pytest.raises(ImmutableRowError):
            session.flush()
    finally:
        session.rollback()
        session.close()


def test_only_one_version_of_a_policy_can_be_active(migrated_engine: Engine) -> None:
    session = make_session_factory(migrated_engine)()
    try:
        session.add_all([_policy("1", active=True), _policy("2"), _policy("3")])
        session.commit()
        session.add(_policy("4", active=True))
        with pytest.raises(IntegrityError):
            session.commit()
    finally:
        session.rollback()
        session.close()
