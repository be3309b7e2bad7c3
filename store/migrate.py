"""Schema migrations run from code (no alembic.ini), so `cdsctl db upgrade` works from any directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine

from store.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at this package's migrations; the database comes from the caller."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR.as_posix())
    return config


def head() -> str:
    """The newest revision the code knows."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return revision


def upgrade(target: str | URL | Engine, revision: str = "head") -> None:
    """Bring the database at `target` up to `revision` (the newest by default); a no-op when already there."""
    config = alembic_config()
    with _engine(target) as engine, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current(target: str | URL | Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    with _engine(target) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(target: str | URL | Engine) -> bool:
    """Whether the database is at the newest revision (the service refuses to start otherwise)."""
    return current(target) == head()


@contextmanager
def _engine(target: str | URL | Engine) -> Iterator[Engine]:
    # An engine the caller passed stays theirs; one made here from a URL is disposed here.
    if isinstance(target, Engine):
        yield target
        return
    engine = make_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()
