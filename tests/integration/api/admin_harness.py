"""The real app on a real database with EHR and staff authentication on, for the admin API tests: hook calls carry
EHR tokens, admin calls staff tokens (tests/staff_tokens.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.pool import NullPool

from api.security import SecuritySettings, TrustedIssuer
from cdsctl.bootstrap import build_container, create_app_from_container
from cdsctl.settings import Environment, Settings
from store import migrate
from store.port import AuditRecord
from store.repository import SqlUnitOfWork
from store.tables import DecisionRow, RiskOutputRow
from tests.e2e.test_walking_skeleton import patient_view_request
from tests.staff_tokens import staff_auth_settings
from tests.unit.api.security.tokens import ec_key, mint

SALT = "admin-api-salt"
EHR_ISSUER = "https://ehr.example.org"
BASE = "http://testserver"
SERVICE = "/cds-services/deterioration-news2"


@dataclass
class AdminApp:
    client: TestClient
    engine: Engine

    def ehr_headers(self, path: str) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": EHR_ISSUER, "aud": f"{BASE}{path}", "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
        return {"Authorization": f"Bearer {mint(ec_key(), claims)}"}

    def call_hook(self) -> tuple[str, dict[str, Any]]:
        """The walking skeleton's NEWS2 9 call (high band: one critical card) for a patient of its own."""
        request = patient_view_request(datetime.now(UTC))
        request["prefetch"]["patient"]["identifier"][0]["value"] = f"MRN-{uuid.uuid4().hex[:10]}"
        response = self.client.post(SERVICE, json=request, headers=self.ehr_headers(SERVICE))
        assert response.status_code == 200, response.text
        return request["hookInstance"], response.json()

    def decision_of(self, hook_instance: str) -> tuple[int, str, list[str], str]:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(DecisionRow.id, DecisionRow.action, DecisionRow.reasons, DecisionRow.policy_version)
                .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
                .where(RiskOutputRow.hook_instance == hook_instance)
            ).one()
        return row.id, row.action, list(row.reasons), row.policy_version

    def audit(self, kind: str) -> list[AuditRecord]:
        with SqlUnitOfWork(self.engine) as uow:
            return [record for record in uow.repo.audit_records() if record.kind == kind]

    def audit_chain_ok(self) -> bool:
        with SqlUnitOfWork(self.engine) as uow:
            return uow.repo.verify_audit_chain().ok


@contextmanager
def admin_app(database_url: str, data_dir: Path) -> Iterator[AdminApp]:
    migrate.upgrade(database_url)
    settings = Settings(
        environment=Environment.TEST,
        data_dir=data_dir,
        database_url=database_url,
        pseudonym_salt=SALT,
        hook_deadline_seconds=10,
        security=SecuritySettings(
            enabled=True, issuers=(TrustedIssuer(iss=EHR_ISSUER, jwks={"keys": [ec_key().public_jwk()]}),)
        ),
        staff_auth=staff_auth_settings(),
    )
    container = build_container(settings)
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with TestClient(create_app_from_container(container), base_url=BASE) as client:
            yield AdminApp(client, engine)
    finally:
        engine.dispose()
        container.engine.dispose()
