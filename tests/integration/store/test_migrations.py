"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Engine, inspect

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


# Every column the models declare as a JSON document, by table.
DOCUMENT_COLUMNS = {
    table.name: {column.name for column in table.columns if isinstance(column.type, JSON)}
    for table in Base.metadata.sorted_tables
}


def _document_columns(engine: Engine) -> dict[str, str]:
    """Each document column of the store, table.column, with its type as the database names it."""
    found = inspect(engine)
    return {
        f"{table}.{column['name']}": str(column["type"]).lower()
        for table, names in DOCUMENT_COLUMNS.items()
        for column in found.get_columns(table)
        if column["name"] in names
    }


# Keys in an order JSONB would not keep (it sorts them by length), numbers of both kinds, nesting and nulls.
_DOCUMENT = {"zeta": 1, "alpha": [1.5, "x", None], "nested": {"bb": True, "a": {"deep": -2e-5}}}
_SAMPLE = "INSERT INTO outbox (channel, payload, target, idempotency_key, state, attempts, created_at, next_attempt_at)"


def test_migrating_postgresql_documents_to_json_text_and_back_keeps_every_document(database_url: str) -> None:
    """0008: the document columns become JSON text on PostgreSQL; rows stored before keep their documents, both ways."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite stores documents as text in every revision")
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0007")
        assert set(_document_columns(engine).values()) == {"jsonb"}
        assert len(_document_columns(engine)) == sum(len(columns) for columns in DOCUMENT_COLUMNS.values()) == 17
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"{_SAMPLE} VALUES ('webhook', %(doc)s::jsonb, 't', 'k', 'pending', 0, now(), now())",
                {"doc": json.dumps(_DOCUMENT)},
            )

        migrate.upgrade(engine)
        assert set(_document_columns(engine).values()) == {"json"}
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT payload FROM outbox").scalar_one() == _DOCUMENT
            # New documents keep their text as written, the order of their keys included.
            connection.exec_driver_sql(
                f"{_SAMPLE} VALUES ('webhook', %(doc)s::json, 't', 'k2', 'pending', 0, now(), now())",
                {"doc": json.dumps(_DOCUMENT)},
            )
            written = "SELECT payload::text FROM outbox WHERE idempotency_key = 'k2'"
            assert connection.exec_driver_sql(written).scalar_one() == json.dumps(_DOCUMENT)
            connection.commit()

        config = migrate.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
        assert set(_document_columns(engine).values()) == {"jsonb"}
        with engine.connect() as connection:
            payloads = connection.exec_driver_sql("SELECT payload FROM outbox ORDER BY id").scalars()
            assert list(payloads) == [_DOCUMENT] * 2
    finally:
        engine.dispose()
