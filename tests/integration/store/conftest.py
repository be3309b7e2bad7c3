"""Fixtures of the store's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store.db import make_session_factory


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    """A session on the migrated database, its transaction rolled back at the end."""
    session = make_session_factory(migrated_engine)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
