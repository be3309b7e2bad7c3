"""One app per test module and backend, with EHR security off (development): staff are named by the X-Staff-*
headers. Tests tell their records apart by patient and card."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.security import SecuritySettings
from cdsctl.bootstrap import Container, build_container, create_app_from_container
from cdsctl.settings import Settings
from store import migrate


@pytest.fixture(scope="module")
def container(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    migrate.upgrade(module_database_url)
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=module_database_url,
        hook_deadline_seconds=10,
        pseudonym_salt="feedback-salt",
        security=SecuritySettings(enabled=False),
    )
    built = build_container(settings)
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app_from_container(container)) as test_client:
        yield test_client
