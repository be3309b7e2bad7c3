"""Hook calls recorded together (HookPipeline.handle_batch): one commit for the lot, the same decisions as one call
after another, and one call's failure only that call's. On SQLite and PostgreSQL."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from api.pipeline import HookCallInput, HookPipeline
from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from policy.port import Decision
from shadow.live import NoShadow, ShadowPlan
from store import pending
from store.db import make_session_factory
from store.pending import PendingRows
from store.policy_state import SqlPolicyUnitOfWork
from store.port import HookCall, RecordedHookCall
from store.repository import SqlUnitOfWork
from store.tables import AuditRow, DecisionRow, HookCallRow, PolicyEventRow
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.live import HIGH, LOW, MEDIUM, _news2, _service, hook_request

SALT = "live-timer-salt"  # the key hook_request's patients are pseudonymised with (tests.integration.notify.live)


def _pipeline(engine: Engine, clock: FakeClock, unit_of_work: Any = None) -> HookPipeline:
    return HookPipeline(
        scorers={"news2": _news2()},
        policies={"deterioration": RoutedPolicy(bundled_policy("deterioration"))},
        unit_of_work=unit_of_work or (lambda: SqlPolicyUnitOfWork(engine)),
        salt=SALT,
        clock=clock,
    )


def _calls(clock: FakeClock, prefix: str) -> list[dict[str, Any]]:
    # Patient a twice at high risk (the second is the same alert again), b at medium, a once more, c at low.
    return [
        hook_request(f"{prefix}-a", clock(), HIGH),
        hook_request(f"{prefix}-a", clock(), HIGH),
        hook_request(f"{prefix}-b", clock(), MEDIUM),
        hook_request(f"{prefix}-a", clock(), HIGH),
        hook_request(f"{prefix}-c", clock(), LOW),
    ]


def _shape(response: dict[str, Any]) -> list[tuple[str, str]]:
    return [(card["indicator"], card["summary"]) for card in response["cards"]]


def _decisions(engine: Engine) -> list[tuple[str, list[str]]]:
    with engine.connect() as connection:
        rows = connection.execute(select(DecisionRow.action, DecisionRow.reasons).order_by(DecisionRow.id)).all()
    return [(action, list(reasons)) for action, reasons in rows]


def _events(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(PolicyEventRow)) or 0


def test_calls_recorded_together_are_decided_as_one_after_another(migrated_engine: Engine) -> None:
    clock = FakeClock()
    pipeline = _pipeline(migrated_engine, clock)
    service = _service()

    alone = [pipeline.handle(service, body) for body in _calls(clock, "alone")]
    decided_alone, events_alone = _decisions(migrated_engine), _events(migrated_engine)
    together = pipeline.handle_batch(HookCallInput(service, body) for body in _calls(clock, "together"))
    decided_together = _decisions(migrated_engine)[len(decided_alone) :]

    assert all(isinstance(answer, dict) for answer in together)
    assert [_shape(answer) for answer in together] == [_shape(answer) for answer in alone]  # type: ignore[arg-type]
    assert decided_together == decided_alone
    # The repeated alert was held back in both runs: each call read the state the calls before it left.
    assert _shape(alone[0]) and _shape(alone[0]) != _shape(alone[1])
    assert events_alone and _events(migrated_engine) == 2 * events_alone  # and appended as many events


def test_a_batch_is_one_commit_and_keeps_the_audit_chain_whole(migrated_engine: Engine) -> None:
    clock = FakeClock()
    pipeline = _pipeline(migrated_engine, clock)
    commits: list[object] = []
    event.listen(migrated_engine, "commit", commits.append)

    answers = pipeline.handle_batch(HookCallInput(_service(), body) for body in _calls(clock, "batch"))

    assert len(commits) == 1
    assert all(isinstance(answer, dict) for answer in answers)
    with SqlUnitOfWork(migrated_engine) as uow:
        check = uow.repo.verify_audit_chain()
    assert check.ok and check.checked == len(answers)


def test_a_recorded_batch_leaves_no_reference_cycle_for_the_collector(migrated_engine: Engine) -> None:
    # What a transaction keeps on its session (waiting rows, reads, the audit head) refers back to the session
    # through its transaction; unless dropped at the end, a batch's rows lived on until the cyclic collector ran,
    # and that collection, many batches later, was one long pause of a hook call.
    clock = FakeClock()
    # As the service wires it: one session factory (a factory made per call would make a Session class per call).
    sessions = make_session_factory(migrated_engine)
    pipeline = _pipeline(migrated_engine, clock, lambda: SqlPolicyUnitOfWork(sessions))
    pipeline.handle_batch(HookCallInput(_service(), body) for body in _calls(clock, "warm"))  # first-use caches
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept in gc.garbage, to be looked at
    try:
        answers = pipeline.handle_batch(HookCallInput(_service(), body) for body in _calls(clock, "batch"))
        gc.collect()
        # Other tests' threads in this process may leave cycles of their own meanwhile: only the store's count.
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, Session | SessionTransaction | PendingRows)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert all(isinstance(answer, dict) for answer in answers)
    assert left == []


class _FailsFor(SqlPolicyUnitOfWork):
    """A unit of work whose store refuses to record one hookInstance (a write the database turns down)."""

    refused: str = ""

    def __enter__(self) -> _FailsFor:
        super().__enter__()
        record = self.repo.record_hook_call

        def refusing(call: HookCall) -> RecordedHookCall:
            result = record(call)
            if call.hook_instance == self.refused:
                raise RuntimeError("refused by the store")
            return result

        self.repo.record_hook_call = refusing  # type: ignore[method-assign]
        return self


def test_a_call_that_cannot_be_recorded_fails_alone(migrated_engine: Engine) -> None:
    clock = FakeClock()
    pipeline = _pipeline(migrated_engine, clock, unit_of_work=lambda: _FailsFor(migrated_engine))
    bodies = _calls(clock, "fails")
    _FailsFor.refused = bodies[2]["hookInstance"]

    answers = pipeline.handle_batch(HookCallInput(_service(), body) for body in bodies)

    assert isinstance(answers[2], RuntimeError)
    assert [isinstance(answer, dict) for i, answer in enumerate(answers) if i != 2] == [True] * 4
    with migrated_engine.connect() as connection:
        recorded = set(connection.scalars(select(HookCallRow.hook_instance)))
        audited = connection.scalar(select(func.count()).select_from(AuditRow))
    assert recorded == {body["hookInstance"] for i, body in enumerate(bodies) if i != 2}
    assert audited == 4
    with SqlUnitOfWork(migrated_engine) as uow:
        assert uow.repo.verify_audit_chain().ok


def test_a_call_whose_work_fails_fails_alone(migrated_engine: Engine) -> None:
    clock = FakeClock()
    pipeline = _pipeline(migrated_engine, clock)
    bodies = _calls(clock, "broken")
    bodies[1]["prefetch"] = "not a prefetch object"

    answers = pipeline.handle_batch(HookCallInput(_service(), body) for body in bodies)

    assert isinstance(answers[1], Exception)
    assert sum(isinstance(answer, dict) for answer in answers) == 4


def test_a_hook_instance_repeated_within_a_batch_is_answered_once(migrated_engine: Engine) -> None:
    clock = FakeClock()
    pipeline = _pipeline(migrated_engine, clock)
    body = hook_request("retry-a", clock(), HIGH)

    first, retry = pipeline.handle_batch([HookCallInput(_service(), body), HookCallInput(_service(), dict(body))])

    assert first == retry and isinstance(first, dict) and first["cards"]
    with migrated_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(HookCallRow)) == 1
        assert connection.scalar(select(func.count()).select_from(AuditRow)) == 1


class _ShadowFailsFor(NoShadow):
    """Shadow work that fails for one hookInstance, after its call was recorded (a fault past the commit)."""

    def __init__(self, refused: str) -> None:
        self.refused = refused

    def submit(self, plan: ShadowPlan, hook_instance: str, served: Sequence[Decision], *, role: str) -> None:
        if hook_instance == self.refused:
            raise RuntimeError("shadow queue broken")


def test_a_call_failing_after_the_commit_fails_alone_and_stays_recorded(migrated_engine: Engine) -> None:
    clock = FakeClock()
    bodies = _calls(clock, "after")
    pipeline = HookPipeline(
        scorers={"news2": _news2()},
        policies={"deterioration": RoutedPolicy(bundled_policy("deterioration"))},
        unit_of_work=lambda: SqlPolicyUnitOfWork(migrated_engine),
        salt=SALT,
        clock=clock,
        shadow=_ShadowFailsFor(bodies[1]["hookInstance"]),
    )

    answers = pipeline.handle_batch(HookCallInput(_service(), body) for body in bodies)

    assert isinstance(answers[1], RuntimeError)
    assert [isinstance(answer, dict) for i, answer in enumerate(answers) if i != 1] == [True] * 4
    # Its failure came after the commit: its record, and every other call's, is kept.
    with migrated_engine.connect() as connection:
        recorded = set(connection.scalars(select(HookCallRow.hook_instance)))
    assert recorded == {body["hookInstance"] for body in bodies}


@pytest.mark.postgres
def test_a_batchs_hook_call_rows_go_in_with_one_statement(
    migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch looks its hookInstances up together, and the new calls' own rows wait with their other rows: one
    # statement for all of them at the commit, instead of one a call (a round trip each).
    if migrated_engine.dialect.name != "postgresql":
        pytest.skip("on SQLite each call's row goes in at once: a statement there is no round trip")
    clock = FakeClock()
    pipeline = _pipeline(migrated_engine, clock)
    # At medium risk: a card, and no escalation timer to arm (arming one writes the waiting rows at once).
    bodies = [hook_request(f"rows-{name}", clock(), MEDIUM) for name in "abcd"]
    written: list[int] = []
    insert_new = pending.insert_new

    def counted(cursor: Any, driver: Any, table: Any, columns: Any, rows: Any, key: str) -> set[Any]:
        written.append(len(rows))
        return insert_new(cursor, driver, table, columns, rows, key)

    monkeypatch.setattr(pending, "insert_new", counted)

    answers = pipeline.handle_batch(HookCallInput(_service(), body) for body in bodies)

    assert all(isinstance(answer, dict) and answer["cards"] for answer in answers)
    assert written == [4]
    with migrated_engine.connect() as connection:
        stored = {
            hi: response for hi, response in connection.execute(select(HookCallRow.hook_instance, HookCallRow.response))
        }
    assert stored == {body["hookInstance"]: answer for body, answer in zip(bodies, answers, strict=True)}


class _RacedFor(SqlPolicyUnitOfWork):
    """A unit of work whose batch, once it has looked its hookInstances up, is overtaken by another transaction
    recording one of them (another worker answering the EHR's retry)."""

    raced = ""
    answer: ClassVar[dict[str, Any]] = {"cards": [{"summary": "the other worker's answer"}]}

    def __enter__(self) -> _RacedFor:
        super().__enter__()
        expect = self.repo.expect_hook_calls

        def overtaken(hook_instances: Any) -> None:
            expect(hook_instances)
            with SqlUnitOfWork(self._factory) as other:
                other.repo.record_hook_call(
                    HookCall(self.raced, "news2-deterioration", "patient-view", "ehr", FakeClock()(), self.answer)
                )
                other.commit()

        self.repo.expect_hook_calls = overtaken  # type: ignore[method-assign]
        return self


@pytest.mark.postgres
def test_a_hook_instance_recorded_meanwhile_by_another_transaction_is_answered_as_it_was(
    migrated_engine: Engine,
) -> None:
    if migrated_engine.dialect.name != "postgresql":
        pytest.skip("on SQLite the batch's transaction holds the only writer lock from its lookup on")
    clock = FakeClock()
    bodies = [hook_request(f"raced-{name}", clock(), HIGH) for name in "abc"]
    _RacedFor.raced = bodies[1]["hookInstance"]
    pipeline = _pipeline(migrated_engine, clock, unit_of_work=lambda: _RacedFor(migrated_engine))

    answers = pipeline.handle_batch(HookCallInput(_service(), body) for body in bodies)

    # The batch's write found the hookInstance taken; its calls were recorded again one by one, and the raced call
    # answered as the other transaction had, recorded once.
    assert answers[1] == _RacedFor.answer
    assert all(isinstance(answer, dict) and answer["cards"] for answer in (answers[0], answers[2]))
    with migrated_engine.connect() as connection:
        recorded = list(connection.scalars(select(HookCallRow.hook_instance)))
    assert sorted(recorded) == sorted(body["hookInstance"] for body in bodies)
    with SqlUnitOfWork(migrated_engine) as uow:
        assert uow.repo.verify_audit_chain().ok
