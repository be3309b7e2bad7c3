"""Replay protection through the database: a token accepted by one worker is refused by every other, on SQLite and
PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, func, inspect, select

from api.security.errors import EhrAuthenticationError, RejectReason
from store import migrate
from store.db import make_engine
from store.replay import SqlReplayGuard
from store.tables import EhrTokenUseRow
from tests.unit.api.security.tokens import NOW, claims, ec_key, harness, mint

T0 = datetime.fromtimestamp(NOW, UTC)


@pytest.fixture
def second_engine(migrated_engine: Engine, database_url: str) -> Iterator[Engine]:
    """Another engine on the same database, as a second worker process would have."""
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(EhrTokenUseRow)).scalar_one()


def test_a_token_accepted_by_one_worker_is_refused_by_another(migrated_engine: Engine, second_engine: Engine) -> None:
    first = harness(replay_guard=SqlReplayGuard(migrated_engine))
    second = harness(replay_guard=SqlReplayGuard(second_engine))
    token = mint(ec_key())

    assert first.verify(token).sub == "ehr-client-7"
    for worker in (second, first):
        with pytest.raises(EhrAuthenticationError) as refused:
            worker.verify(token)
        assert refused.value.reason is RejectReason.REPLAYED
    assert second.verify(mint(ec_key())).sub == "ehr-client-7"


def test_of_many_workers_racing_with_one_token_exactly_one_accepts_it(
    migrated_engine: Engine, second_engine: Engine
) -> None:
    guards = [SqlReplayGuard(migrated_engine if n % 2 else second_engine) for n in range(8)]
    expires = T0 + timedelta(minutes=5)

    with ThreadPoolExecutor(max_workers=8) as pool:
        wins = list(pool.map(lambda guard: guard.first_use("k" * 64, expires_at=expires, now=T0), guards))

    assert sorted(wins) == [False] * 7 + [True]


def test_the_stored_key_is_a_hash_never_the_raw_jti(migrated_engine: Engine) -> None:
    harness(replay_guard=SqlReplayGuard(migrated_engine)).verify(mint(ec_key(), claims(jti="visible-jti")))

    with migrated_engine.connect() as connection:
        (key,) = connection.execute(select(EhrTokenUseRow.token_key)).one()
    assert len(key) == 64 and "visible-jti" not in key


def test_expired_token_ids_are_purged_on_the_way(migrated_engine: Engine) -> None:
    guard = SqlReplayGuard(migrated_engine, purge_interval=timedelta(seconds=60))
    for n in range(5):
        guard.first_use(f"{n:064d}", expires_at=T0 + timedelta(seconds=30), now=T0)
    assert _rows(migrated_engine) == 5

    guard.first_use("f" * 64, expires_at=T0 + timedelta(minutes=10), now=T0 + timedelta(seconds=30))
    assert _rows(migrated_engine) == 6  # within the purge interval: nothing deleted yet

    guard.first_use("e" * 64, expires_at=T0 + timedelta(minutes=10), now=T0 + timedelta(seconds=61))
    assert _rows(migrated_engine) == 2


def test_an_expired_row_not_yet_purged_does_not_block_a_later_use(migrated_engine: Engine) -> None:
    guard = SqlReplayGuard(migrated_engine, purge_interval=timedelta(days=1))
    key = "a" * 64
    assert guard.first_use(key, expires_at=T0 + timedelta(seconds=30), now=T0)

    later = T0 + timedelta(seconds=31)
    assert guard.first_use(key, expires_at=later + timedelta(seconds=30), now=later)
    assert not guard.first_use(key, expires_at=later + timedelta(seconds=30), now=later + timedelta(seconds=1))


def test_the_migration_adds_the_token_table_and_its_downgrade_removes_it(migrated_engine: Engine) -> None:
    assert "ehr_token_uses" in inspect(migrated_engine).get_table_names()

    config = migrate.alembic_config()
    with migrated_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")

    assert "ehr_token_uses" not in inspect(migrated_engine).get_table_names()
    assert migrate.current(migrated_engine) == "0001"
