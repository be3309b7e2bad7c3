"""A NEWS2 "medium" patient-view call (the bundled deterioration-news2 service surfaces a warning card for it)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.hook_requests import MEDIUM_NEWS2, vitals_call

SERVICE = "deterioration-news2"


def medium_news2_call(patient: str, user: str = "Practitioner/nurse-1") -> dict[str, Any]:
    return vitals_call(patient, MEDIUM_NEWS2, user=user)


def new_patient(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
