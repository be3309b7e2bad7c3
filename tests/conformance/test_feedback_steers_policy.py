"""Feedback steers the live policy: a dismissed (overridden) alert is locked out on the next call for the patient."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from store.tables import DecisionRow, RiskOutputRow
from tests.hook_requests import MEDIUM_NEWS2, vitals_call


def _medium_news2_call(patient: str) -> dict[str, Any]:
    return vitals_call(patient, MEDIUM_NEWS2)


def _reasons(database_url: str, hook_instance: str) -> list[str]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(DecisionRow.reasons)
                .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
                .where(RiskOutputRow.hook_instance == hook_instance)
            ).one()
    finally:
        engine.dispose()
    return list(row.reasons)


def test_an_overridden_alert_is_locked_out_on_the_next_call_for_that_patient(
    client: TestClient, module_database_url: str
) -> None:
    patient = f"lockout-{uuid.uuid4().hex[:8]}"
    first = client.post("/cds-services/deterioration-news2", json=_medium_news2_call(patient)).json()
    assert first["cards"], "a NEWS2 medium alert is surfaced the first time"
    feedback = {
        "feedback": [
            {
                "card": first["cards"][0]["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": datetime.now(UTC).isoformat(),
            }
        ]
    }
    assert client.post("/cds-services/deterioration-news2/feedback", json=feedback).status_code == 200

    second_call = _medium_news2_call(patient)
    second = client.post("/cds-services/deterioration-news2", json=second_call).json()

    assert second == {"cards": []}
    assert "locked-out" in _reasons(module_database_url, second_call["hookInstance"])
