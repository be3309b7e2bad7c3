"""One real patient-view call travels api → clinical → NEWS2 on durable-rules → policy → card → store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, create_engine, func, select
from sqlalchemy.pool import NullPool

from store.tables import AuditRow, CardRow, DecisionRow, HookCallRow, RiskOutputRow
from tests.e2e.conftest import RunningServer

PATIENT_NAME = "Zebedee Quillfeather"
PATIENT_MRN = "MRN-40417-XQ"


def _vital(code: str, display: str, value: float, unit: str, ucum: str, at: datetime, n: int) -> dict[str, Any]:
    return {
        "fullUrl": f"https://ehr.example.org/fhir/Observation/v{n}",
        "resource": {
            "resourceType": "Observation",
            "id": f"v{n}",
            "meta": {"versionId": "1"},
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": at.isoformat(),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum},
        },
    }


def patient_view_request(now: datetime) -> dict[str, Any]:
    at = now - timedelta(minutes=30)
    vitals = [
        _vital("9279-1", "Respiratory rate", 26, "breaths/min", "/min", at, 1),  # 3 points
        _vital("59408-5", "SpO2", 93, "%", "%", at, 2),  # 2 points on scale 1
        _vital("8480-6", "Systolic BP", 105, "mmHg", "mm[Hg]", at, 3),  # 1 point
        _vital("8867-4", "Heart rate", 115, "beats/min", "/min", at, 4),  # 2 points
        _vital("8310-5", "Body temperature", 101.3, "degF", "[degF]", at, 5),  # 38.5 °C: 1 point
    ]
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": "p1"},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": "p1",
                "identifier": [
                    {
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "system": "urn:oid:1.2.36.146.595.217.0.1",
                        "value": PATIENT_MRN,
                    }
                ],
                "name": [{"family": PATIENT_NAME.split()[1], "given": [PATIENT_NAME.split()[0]]}],
                "gender": "female",
                "birthDate": "1950-03-02",
            },
            "vitals": {"resourceType": "Bundle", "type": "searchset", "entry": vitals},
            "oxygen": None,
        },
    }


def _audit_records_for(connection: Connection, hook_instance: str) -> int:
    count = connection.scalar(
        select(func.count()).select_from(AuditRow).where(AuditRow.subject == f"hook:{hook_instance}")
    )
    return int(count or 0)


def test_patient_view_call_returns_a_news2_card_and_records_every_step(server: RunningServer) -> None:
    request = patient_view_request(datetime.now(UTC))
    instance = request["hookInstance"]

    response = httpx.post(f"{server.base_url}/cds-services/deterioration-news2", json=request, timeout=30)

    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    # RR 26 → 3, SpO2 93 → 2, SBP 105 → 1, HR 115 → 2, 101.3 °F = 38.5 °C → 1; air and alert were not sent.
    assert card["summary"].startswith("NEWS2 9")
    assert card["indicator"] == "critical"
    assert len(card["summary"]) < 140
    uuid.UUID(card["uuid"])

    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            call = connection.execute(select(HookCallRow).where(HookCallRow.hook_instance == instance)).one()
            assert call.patient_key is not None and PATIENT_MRN not in call.patient_key
            output = connection.execute(select(RiskOutputRow).where(RiskOutputRow.hook_instance == instance)).one()
            assert (output.scorer_id, output.score, output.band) == ("news2", 9, "high")
            decision = connection.execute(select(DecisionRow).where(DecisionRow.risk_output_id == output.id)).one()
            # NEWS2 ≥ 7 under the bundled deterioration policy: an escalation, its trace and ladder kept.
            assert decision.action == "escalate"
            assert decision.policy_id == "deterioration"
            assert decision.trace["route_chosen"] == "news2-high"
            assert [step["role"] for step in decision.escalation] == ["nurse", "charge-nurse", "rapid-response"]
            stored_card = connection.execute(select(CardRow).where(CardRow.decision_id == decision.id)).one()
            assert stored_card.uuid == card["uuid"]
            assert _audit_records_for(connection, instance) == 1
    finally:
        engine.dispose()


def test_the_same_hook_instance_twice_gets_the_same_cards_and_one_record(server: RunningServer) -> None:
    request = patient_view_request(datetime.now(UTC))
    url = f"{server.base_url}/cds-services/deterioration-news2"

    first = httpx.post(url, json=request, timeout=30).json()
    second = httpx.post(url, json=request, timeout=30).json()

    assert first == second
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            assert _audit_records_for(connection, request["hookInstance"]) == 1
    finally:
        engine.dispose()


def test_patient_name_and_identifier_never_reach_the_log(server: RunningServer) -> None:
    request = patient_view_request(datetime.now(UTC))

    response = httpx.post(f"{server.base_url}/cds-services/deterioration-news2", json=request, timeout=30)

    assert response.status_code == 200
    log = server.log_text()
    assert "hook.handled" in log, "the call must be logged, so that the check below means something"
    for phi in (PATIENT_MRN, *PATIENT_NAME.split(), "1950-03-02"):
        assert phi not in log


def test_discovery_lists_the_bundled_service_without_empty_members(server: RunningServer) -> None:
    body = httpx.get(f"{server.base_url}/cds-services", timeout=10).json()

    service = next(s for s in body["services"] if s["id"] == "deterioration-news2")
    assert service["hook"] == "patient-view"
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert all(value not in (None, "", [], {}) for value in service.values())
