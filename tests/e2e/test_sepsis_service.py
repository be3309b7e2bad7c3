"""The sepsis service over HTTP: the bundled ONNX model and the qSOFA and SIRS rules score one encounter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from store.tables import RiskOutputRow
from tests.e2e.conftest import RunningServer

_VITALS = [("8867-4", "/min", 112.0), ("9279-1", "/min", 24.0), ("8480-6", "mm[Hg]", 96.0), ("8310-5", "Cel", 38.6)]
_LABS = [("6690-2", "10*3/uL", 15.2), ("2524-7", "mmol/L", 3.1), ("2160-0", "mg/dL", 1.9)]


def _observation(n: int, code: str, unit: str, value: float, at: datetime, category: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"s{n}",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/s1"},
        "effectiveDateTime": at.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def sepsis_request(now: datetime) -> dict[str, Any]:
    admitted = now - timedelta(hours=12)
    observations = []
    for hour in range(12):
        at = admitted + timedelta(hours=hour, minutes=20)
        for code, unit, value in _VITALS:
            observations.append(_observation(len(observations), code, unit, value + hour * 0.1, at, "vital-signs"))
        if hour % 6 == 5:
            for code, unit, value in _LABS:
                observations.append(_observation(len(observations), code, unit, value, at, "laboratory"))
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": "s1", "encounterId": "e1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "s1", "gender": "male", "birthDate": "1948-05-01"},
            "encounter": {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "in-progress",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": {"reference": "Patient/s1"},
                "period": {"start": admitted.isoformat()},
            },
            "observations": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": o} for o in observations],
            },
        },
    }


def test_sepsis_service_scores_the_encounter_with_the_model_and_both_rules(server: RunningServer) -> None:
    request = sepsis_request(datetime.now(UTC))

    response = httpx.post(f"{server.base_url}/cds-services/sepsis-risk", json=request, timeout=30)

    assert response.status_code == 200, response.text
    topics = sorted(card["source"]["topic"]["code"] for card in response.json()["cards"])
    assert {"qsofa", "sirs"} <= set(topics)
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(RiskOutputRow).where(RiskOutputRow.hook_instance == request["hookInstance"])
            ).all()
    finally:
        engine.dispose()
    by_scorer = {row.scorer_id: row for row in rows}
    model = by_scorer["sepsis-hgb"]
    assert model.score is not None and 0.0 <= model.score <= 1.0
    assert model.scorer_version.startswith("1.1.0")
    # RR 24 and SBP 96 are two qSOFA criteria; temperature, heart rate, RR and WBC make SIRS positive.
    assert (by_scorer["qsofa"].band, by_scorer["sirs"].band) == ("positive", "positive")
    # The deterioration policy shows the model's card in its high band only: moderate waits for a lactate or an
    # hour, low is below threshold.
    assert ("sepsis-hgb" in topics) == (model.band == "high")
