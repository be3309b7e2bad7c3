"""A NEWS2 "medium" patient-view call (the bundled deterioration-news2 service surfaces a warning card for it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

CATEGORY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
SERVICE = "deterioration-news2"


def medium_news2_call(patient: str, user: str = "Practitioner/nurse-1") -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    vitals = [("9279-1", 22, "/min"), ("8867-4", 115, "/min"), ("8310-5", 38.5, "Cel"), ("59408-5", 97, "%")]
    entries = [
        {
            "resource": {
                "resourceType": "Observation",
                "id": f"{patient}-{code}",
                "status": "final",
                "category": [CATEGORY],
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": at,
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
            }
        }
        for code, value, unit in vitals
    ]
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": user, "patientId": patient},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": patient},
            "vitals": {"resourceType": "Bundle", "type": "searchset", "entry": entries},
        },
    }


def new_patient(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
