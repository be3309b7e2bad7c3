"""A secured in-process service on a real database for hostile-input tests, with helpers to mint tokens for it and
to count the rows every table a request could write to holds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.security import SecuritySettings, TrustedIssuer
from cdsctl.bootstrap import build_container, create_app_from_container
from cdsctl.settings import Settings
from store import migrate
from tests.conformance.conftest import conformance_catalog
from tests.fakes import FakeScorer, ScriptedPolicy
from tests.unit.api.security.tokens import ec_key, mint, rsa_key

ISSUER = "https://ehr.example.org"
ALLOWED_JKU = "https://ehr.example.org/.well-known/jwks.json"
BASE = "http://testserver"
# Small, so an oversized body costs the test little; still far above any real hook request of the suite.
MAX_BODY_BYTES = 64 * 1024
# Every table a hook call or a feedback message writes to: a refused request must leave each one unchanged.
WRITTEN_TABLES = ("hook_calls", "risk_outputs", "decisions", "cards", "audit_log", "feedback")


@dataclass(frozen=True)
class Service:
    client: TestClient
    engine: Engine

    def row_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
                for table in WRITTEN_TABLES
            }


@pytest.fixture(scope="module")
def service(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    migrate.upgrade(module_database_url)
    keys = {"keys": [ec_key().public_jwk(), rsa_key().public_jwk()]}
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=module_database_url,
        pseudonym_salt="hostile-salt",
        max_body_bytes=MAX_BODY_BYTES,
        security=SecuritySettings(
            enabled=True, issuers=(TrustedIssuer(iss=ISSUER, jwks=keys, allowed_jku=(ALLOWED_JKU,)),)
        ),
    )
    container = build_container(
        settings,
        catalog=conformance_catalog(),
        extra_scorers=[FakeScorer("fake-high"), FakeScorer("fake-slow"), FakeScorer("fake-broken")],
        extra_policies=[ScriptedPolicy("suggesting"), ScriptedPolicy("suppressing")],
    )
    # raise_server_exceptions off: a crash must show as the 500 an EHR would see, which the tests then refuse.
    with TestClient(create_app_from_container(container), base_url=BASE, raise_server_exceptions=False) as client:
        yield Service(client, container.engine)
    container.engine.dispose()


def claims_for(path: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": f"{BASE}{path}", "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
    payload.update(overrides)
    return payload


def auth(path: str, **overrides: Any) -> dict[str, str]:
    """An Authorization header with a fresh valid token for a call to `path`."""
    return {"Authorization": f"Bearer {mint(ec_key(), claims_for(path, **overrides))}"}
