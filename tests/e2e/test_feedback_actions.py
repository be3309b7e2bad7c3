"""Clinicians' actions against the real server: a deferral hides the alert until its time, and the first hook call
after that time surfaces the card again; the feedback report then shows what was done."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from api.security.staff import Role
from store.tables import DecisionRow, RiskOutputRow
from tests.e2e.conftest import RunningServer
from tests.integration.feedback.support import SERVICE, medium_news2_call, new_patient
from tests.staff_tokens import dev_headers

# Long enough for the call inside the deferral to be answered before it ends, on a loaded machine.
DEFERRAL = timedelta(seconds=6)


def _hook(server: RunningServer, patient: str) -> tuple[str, list[dict[str, Any]]]:
    call = medium_news2_call(patient)
    answer = httpx.post(f"{server.base_url}/cds-services/{SERVICE}", json=call, timeout=30)
    assert answer.status_code == 200
    return call["hookInstance"], answer.json()["cards"]


def _reasons(server: RunningServer, hook_instance: str) -> list[str]:
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    select(DecisionRow.reasons)
                    .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
                    .where(RiskOutputRow.hook_instance == hook_instance)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_deferred_alert_resurfaces_on_the_first_call_after_its_time(server: RunningServer) -> None:
    patient = new_patient("defer")
    _, (card,) = _hook(server, patient)
    now = datetime.now(UTC)
    until = now + DEFERRAL
    body = {"action": "defer", "at": now.isoformat(), "until": until.isoformat()}
    deferred = httpx.post(
        f"{server.base_url}/cards/{card['uuid']}/actions", json=body, headers=dev_headers(Role.CLINICIAN), timeout=30
    )
    assert deferred.status_code == 200 and deferred.json()["events"] == ["AlertSnoozed"]

    during_call, during = _hook(server, patient)
    assert datetime.now(UTC) < until, "the machine was too slow to call inside the deferral"
    time.sleep(max((until - datetime.now(UTC)).total_seconds(), 0) + 0.2)
    after_call, after = _hook(server, patient)

    assert during == [] and "snoozed" in _reasons(server, during_call)
    assert len(after) == 1 and after[0]["uuid"] != card["uuid"]
    assert "snooze-expired" in _reasons(server, after_call)

    report = httpx.get(f"{server.base_url}/feedback/report", headers=dev_headers(Role.INFORMATICIST), timeout=30)
    assert report.status_code == 200
    assert {r["group"]: r["responses"] for r in report.json()["rates"]["role"]}.get("clinician", 0) >= 1
