"""SQLite writers of one process take turns on an in-process lock (store.db): every way a transaction can end hands
the turn on, and many concurrent writers all commit, in one unbroken audit chain."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from store import migrate
from store.db import make_engine
from store.port import AuditEntry
from store.repository import SqlUnitOfWork
from store.tables import AuditRow
from tests.unit.store import builders

# Generous: the turn's own timeout is 10 s, so a turn never handed on shows up as a thread still waiting.
_LIVENESS_S = 5.0


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(tmp_path / 'cds.sqlite3').as_posix()}")
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _finishes_in_another_thread(work: Callable[[], None]) -> bool:
    errors: list[BaseException] = []

    def _run() -> None:
        try:
            work()
        except BaseException as exc:  # handed back to the test thread
            errors.append(exc)

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    thread.join(_LIVENESS_S)
    if errors:
        raise errors[0]
    return not thread.is_alive()


def _write_one(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("SELECT 1"))


@pytest.mark.parametrize(
    "end",
    ["commit", "rollback", "close without ending", "exception inside begin()"],
)
def test_every_way_a_transaction_ends_hands_the_writer_turn_to_the_next(sqlite_engine: Engine, end: str) -> None:
    connection = sqlite_engine.connect()
    connection.execute(text("SELECT 1"))  # begins, so this connection now holds the turn
    if end == "commit":
        connection.commit()
        connection.close()
    elif end == "rollback":
        connection.rollback()
        connection.close()
    elif end == "close without ending":
        connection.close()
    else:
        connection.close()
        with pytest.raises(RuntimeError), sqlite_engine.begin() as failing:
            failing.execute(text("SELECT 1"))
            raise RuntimeError("the work failed")

    assert _finishes_in_another_thread(lambda: _write_one(sqlite_engine))


def test_many_concurrent_writers_all_commit_in_one_valid_audit_chain(sqlite_engine: Engine) -> None:
    threads, per_thread = 8, 12
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def _worker(worker: int) -> None:
        try:
            start.wait()
            uow = SqlUnitOfWork(sqlite_engine)
            for index in range(per_thread):
                with uow:
                    uow.repo.append_audit(
                        AuditEntry(
                            actor=f"worker-{worker}",
                            kind="note",
                            subject=f"note:{worker}:{index}",
                            at=builders.T0 + timedelta(seconds=index),
                            payload={"index": index},
                        )
                    )
                    # Every third transaction is abandoned: its turn must pass on just the same.
                    if index % 3 != 2:
                        uow.commit()
        except BaseException as exc:  # handed back to the test thread
            errors.append(exc)

    workers = [threading.Thread(target=_worker, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    with sqlite_engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(AuditRow)).scalar_one()
    assert stored == threads * (per_thread - per_thread // 3)
    uow = SqlUnitOfWork(sqlite_engine)
    with uow:
        check = uow.repo.verify_audit_chain()
    assert check.ok
    assert check.checked == stored
