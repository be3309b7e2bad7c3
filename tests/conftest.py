"""Fixtures shared by every test layer: the shared data sets, and empty databases on SQLite and, when
CDS_TEST_DATABASE_URL is set, PostgreSQL (each test in its own schema, dropped afterwards, so reruns and parallel
runs never see each other)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from store import migrate
from store.db import make_engine
from store.port import UnitOfWork
from store.repository import SqlUnitOfWork

pytest_plugins = ["tests.fhir_server"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared data sets (never copied into the project, never fetched)."""
    path = SHARED_DIR / "data"
    if not path.is_dir():
        pytest.fail(f"shared data directory not found at {path}; tests read it from ../shared beside the repo")
    return path


PG_URL_ENV = "CDS_TEST_DATABASE_URL"


class PostgresSchemas:
    """Creates uniquely named schemas for one pytest session and drops them again."""

    def __init__(self, base_url: str) -> None:
        self._base = make_url(base_url)
        if self._base.get_backend_name() != "postgresql":
            raise pytest.UsageError(f"{PG_URL_ENV} must be a postgresql URL")
        # NullPool: the admin connection is opened only to create or drop a schema, never left idle.
        self._admin = create_engine(self._base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._prefix = f"cds_test_{os.getpid()}_{secrets.token_hex(4)}"
        self._count = 0
        self._live: set[str] = set()

    def create(self) -> tuple[str, URL]:
        self._count += 1
        name = f"{self._prefix}_{self._count}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        self._live.add(name)
        # search_path in the connect options: every pooled connection, and Alembic's, lands in this schema.
        return name, self._base.update_query_dict({"options": f"-csearch_path={name}"})

    def drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self._live.discard(name)

    def close(self) -> None:
        for name in sorted(self._live):
            self.drop(name)
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[PostgresSchemas | None]:
    base_url = os.environ.get(PG_URL_ENV)
    if not base_url:
        yield None
        return
    schemas = PostgresSchemas(base_url)
    try:
        yield schemas
    finally:
        schemas.close()


_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def _empty_database(backend: str, folder: Path, postgres_schemas: PostgresSchemas | None) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{(folder / 'var' / 'cds.sqlite3').as_posix()}"
        return
    if postgres_schemas is None:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    name, url = postgres_schemas.create()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        postgres_schemas.drop(name)


@pytest.fixture(params=_BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_schemas: PostgresSchemas | None
) -> Iterator[str]:
    """An empty database: a SQLite file in a not-yet-existing folder, or a fresh PostgreSQL schema."""
    with _empty_database(request.param, tmp_path, postgres_schemas) as url:
        yield url


@pytest.fixture(scope="module", params=_BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_schemas: PostgresSchemas | None
) -> Iterator[str]:
    """An empty database shared by one test module (for tests that start a server once)."""
    with _empty_database(request.param, tmp_path_factory.mktemp("db"), postgres_schemas) as url:
        yield url


@pytest.fixture
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def uow(migrated_engine: Engine) -> UnitOfWork:
    # Typed as the port, so mypy checks that the adapter really implements it.
    return SqlUnitOfWork(migrated_engine)
