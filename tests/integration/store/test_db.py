"""Engines come configured for the service: SQLite in WAL with foreign keys, instants stored as UTC."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from store.db import make_engine, make_session_factory
from store.tables import AuditRow, DecisionRow
from tests.conftest import PostgresSchemas
from tests.unit.store.builders import T0


def test_a_sqlite_database_gets_its_folder_created_and_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "cds.sqlite3"
    engine = make_engine(f"sqlite:///{path.as_posix()}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000
        assert path.exists()
    finally:
        engine.dispose()


def test_an_unsupported_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        make_engine("mysql://localhost/cds")


@pytest.mark.postgres
def test_a_postgres_connection_dropped_while_idle_is_replaced_without_an_error(
    postgres_schemas: PostgresSchemas | None,
) -> None:
    if postgres_schemas is None:
        pytest.skip("PostgreSQL tests need CDS_TEST_DATABASE_URL")
    name, url = postgres_schemas.create()
    engine, other = make_engine(url), make_engine(url)
    try:
        with engine.connect() as connection:
            backend_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # The pooled connection is now idle; kill it from outside, as a server restart or a proxy timeout would.
        with other.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid}).scalar_one()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_schema()")).scalar_one() == name
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != backend_pid
    finally:
        engine.dispose()
        other.dispose()
        postgres_schemas.drop(name)


def test_a_decision_for_a_missing_risk_output_is_refused(migrated_engine: Engine) -> None:
    session = make_session_factory(migrated_engine)()
    session.add(
        DecisionRow(
            risk_output_id=12345,
            action="surface",
            reasons=["route-matched"],
            policy_id="p",
            policy_version="1",
            route="r",
            inputs_hash="0" * 64,
            decided_at=T0,
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.close()


def test_naive_datetimes_are_refused_before_reaching_the_database(migrated_engine: Engine) -> None:
    session = make_session_factory(migrated_engine)()
    session.add(
        AuditRow(
            seq=1,
            at=datetime(2026, 1, 1, 12, 0),  # noqa: DTZ001 -- the naive time under test
            actor="a",
            kind="k",
            subject="s",
            payload={},
            prev_hash="0" * 64,
            hash="0" * 64,
        )
    )
    with pytest.raises(Exception, match="naive"):
        session.commit()
    session.close()
