"""Patient-view calls carrying a Patient and a Bundle of vital signs, as the bundled deterioration-news2 service is
called in integration, conformance and end-to-end tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

CATEGORY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
# Respiratory rate 22, heart rate 115, temperature 38.5 °C, SpO2 97 %: NEWS2 5, "medium" (a warning card).
MEDIUM_NEWS2 = (("9279-1", 22, "/min"), ("8867-4", 115, "/min"), ("8310-5", 38.5, "Cel"), ("59408-5", 97, "%"))


def vitals_call(
    patient: str,
    vitals: tuple[tuple[str, float, str], ...] = MEDIUM_NEWS2,
    *,
    at: datetime | None = None,
    user: str = "Practitioner/nurse-1",
) -> dict[str, Any]:
    """A fresh hookInstance; observations measured at `at` (default ten minutes ago), LOINC-coded, in UCUM units."""
    observed = (at or datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    entries = [
        {
            "resource": {
                "resourceType": "Observation",
                "id": f"{patient}-{code}",
                "status": "final",
                "category": [CATEGORY],
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": observed,
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
