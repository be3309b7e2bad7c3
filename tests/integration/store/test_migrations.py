"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from store import migrate
from store.db import make_engine
from store.tables import Base

TABLES = {
    "hook_calls",
    "risk_outputs",
    "decisions",
    "cards",
    "feedback",
    "policy_versions",
    "shadow_results",
    "audit_log",
    "ehr_token_uses",
    "timers",
    "outbox",
    "policy_events",
    "card_actions",
    "candidates",
    "candidate_stage_changes",
    "shadow_decisions",
}


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_builds_every_table_on_an_empty_database(database_url: str) -> None:
    assert migrate.current(database_url) is None
    assert not migrate.is_current(database_url)

    migrate.upgrade(database_url)

    assert migrate.current(database_url) == migrate.head()
    assert migrate.is_current(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrading_a_current_database_changes_nothing(migrated_engine: Engine) -> None:
    migrate.upgrade(migrated_engine)
    assert migrate.is_current(migrated_engine)
    assert _schema_diff(migrated_engine) == []


def test_the_migrated_schema_is_exactly_what_the_models_describe(migrated_engine: Engine) -> None:
    assert _schema_diff(migrated_engine) == []


def test_the_schema_comparison_notices_drift(migrated_engine: Engine) -> None:
    # Guards the test above: the comparison must be able to fail.
    with migrated_engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_cards_hook_instance")
    diff = _schema_diff(migrated_engine)
    assert [entry[0] for entry in diff if isinstance(entry, tuple)] == ["add_index"]


def test_downgrade_to_base_removes_every_table(migrated_engine: Engine) -> None:
    config = migrate.alembic_config()
    with migrated_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(migrated_engine).get_table_names()) <= {"alembic_version"}
    assert migrate.current(migrated_engine) is None
