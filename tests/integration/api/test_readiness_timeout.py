"""/readyz when its checks cannot finish (a database that stops answering, every worker thread busy): it answers
503 promptly instead of hanging the orchestrator's probe."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.catalog import ServiceCatalog
from api.pipeline import HookPipeline
from api.security import EhrAuthenticator
from api.security.settings import SecuritySettings
from cdsctl.settings import Environment, Settings

# Released after the test; far beyond the route's own timeout, so only a route without one waits this long.
_CHECK_BLOCKS_S = 20


@pytest.fixture
def stuck_client() -> Iterator[TestClient]:
    released = threading.Event()

    def readiness() -> dict[str, bool]:
        released.wait(_CHECK_BLOCKS_S)
        return {"database": True, "schema_current": True, "scorers_loaded": True}

    app = create_app(
        settings=Settings(environment=Environment.TEST, security=SecuritySettings(enabled=False)),
        catalog=ServiceCatalog.load(),
        pipeline=HookPipeline(scorers={}, policies={}, unit_of_work=lambda: None, salt="test"),  # type: ignore[arg-type,return-value]
        authenticator=EhrAuthenticator.from_settings(SecuritySettings(enabled=False), replay_guard=None),  # type: ignore[arg-type]
        readiness=readiness,
    )
    with TestClient(app) as client:
        try:
            yield client
        finally:
            released.set()


def test_readyz_is_not_ready_when_its_checks_do_not_finish(stuck_client: TestClient) -> None:
    response = stuck_client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "not-ready"
