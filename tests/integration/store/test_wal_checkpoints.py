"""A SQLite file's log is copied into the database by a thread of its own (store.checkpoints), not inside the commits
of the hook path; the service starts that thread with the app and stops it on shutdown."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cdsctl.bootstrap import Container, build_container, create_app_from_container
from notify.settings import NotifySettings
from store import migrate
from store.checkpoints import WalCheckpointer
from store.db import make_engine
from tests.integration.notify.live import HIGH, hook_request, service_settings

PAGE = 4096
ROWS_PER_COMMIT = 40  # a row of 3,000 bytes takes a page: about 40 pages a commit
COMMITS = 40  # 1,600 pages in all, past SQLite's own checkpoint at 1,000


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{(tmp_path / 'wal.sqlite3').as_posix()}", background_checkpoints=True)
    with made.begin() as connection:
        connection.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"))
    # The empty table into the database file itself: what the tests then find there, the commits put there.
    outside = sqlite3.connect(str(made.url.database), isolation_level=None)
    try:
        outside.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        outside.close()
    yield made
    made.dispose()


def _commit_pages(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO filler (body) VALUES (randomblob(3000))"), [{} for _ in range(ROWS_PER_COMMIT)]
        )


def _wal_pages(engine: Engine) -> int:
    assert engine.url.database is not None
    wal = Path(engine.url.database + "-wal")
    return wal.stat().st_size // PAGE if wal.exists() else 0


def _rows_in_the_database_file(engine: Engine, table: str = "filler") -> int:
    """What the database file itself holds, the log ignored (immutable: SQLite reads neither the log nor locks)."""
    assert engine.url.database is not None
    reader = sqlite3.connect(f"file:{engine.url.database}?immutable=1", uri=True)
    try:
        return int(reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 - the tests' names
    finally:
        reader.close()


def test_without_the_checkpointer_the_commits_leave_the_log_uncopied(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 10_000
    for _ in range(COMMITS):
        _commit_pages(engine)
    # SQLite's default would have copied the log into the database at 1,000 pages, inside a commit.
    assert _wal_pages(engine) > 1_000
    assert _rows_in_the_database_file(engine) == 0


def test_the_checkpointer_copies_each_commit_and_the_log_starts_over(engine: Engine) -> None:
    checkpointer = WalCheckpointer(engine)
    stop = checkpointer.start()
    try:
        for _ in range(COMMITS):
            _commit_pages(engine)
            assert checkpointer.settled()
        # Each commit's pages reached the database file, and each next writer began the log again from its start.
        assert _rows_in_the_database_file(engine) == COMMITS * ROWS_PER_COMMIT
        assert _wal_pages(engine) < 3 * ROWS_PER_COMMIT
        assert checkpointer.checkpoints >= 1
    finally:
        stop()
    assert not any(t.name == "wal-checkpoint" and t.is_alive() for t in threading.enumerate())


def test_a_checkpointer_needs_a_database_file() -> None:
    with pytest.raises(ValueError, match="SQLite database file"):
        WalCheckpointer(make_engine("sqlite://"))


def _checkpoint_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "wal-checkpoint" and t.is_alive())


def _container(database_url: str, data_dir: Path) -> Container:
    """The service's wiring over a migrated database, with no notify worker beside it."""
    migrate.upgrade(database_url)
    return build_container(service_settings(database_url, data_dir, NotifySettings(run_in_process=False)))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_service_checkpoints_beside_its_hook_calls_and_stops_with_the_app(
    database_url: str, tmp_path: Path
) -> None:
    container = _container(database_url, tmp_path)
    before = _checkpoint_threads()
    try:
        with TestClient(create_app_from_container(container)) as client:
            assert _checkpoint_threads() == before + 1
            call = hook_request("p-wal", datetime.now(UTC), HIGH)
            answer = client.post("/cds-services/deterioration-news2", json=call)
            assert answer.status_code == 200
        assert _checkpoint_threads() == before, "the app's shutdown stopped the checkpointer"
        # The call's rows were copied into the database file by the thread, not left in the log.
        assert _rows_in_the_database_file(container.engine, "hook_calls") == 1
    finally:
        container.engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_no_checkpointer_runs_beside_postgresql(database_url: str, tmp_path: Path) -> None:
    container = _container(database_url, tmp_path)
    before = _checkpoint_threads()
    try:
        with TestClient(create_app_from_container(container)):
            assert _checkpoint_threads() == before
    finally:
        container.engine.dispose()
