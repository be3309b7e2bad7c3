"""The live hook path under the deterioration policy: its state persists between hook calls, and every decision
can be explained afterwards from what was stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from api.security.staff import Role
from store.tables import DecisionRow, HookCallRow, PolicyEventRow, RiskOutputRow
from tests.e2e.conftest import RunningServer
from tests.e2e.test_walking_skeleton import patient_view_request
from tests.staff_tokens import dev_headers

SERVICE = "/cds-services/deterioration-news2"


def _request_for(mrn: str) -> dict[str, Any]:
    """The walking skeleton's NEWS2 9 call, for a patient of its own (tests share one server and database)."""
    request = patient_view_request(datetime.now(UTC))
    request["prefetch"]["patient"]["identifier"][0]["value"] = mrn
    return request


def _decision_of(server: RunningServer, hook_instance: str) -> tuple[int, str, list[str]]:
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(DecisionRow.id, DecisionRow.action, DecisionRow.reasons)
                .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
                .where(RiskOutputRow.hook_instance == hook_instance)
            ).one()
    finally:
        engine.dispose()
    return row.id, row.action, list(row.reasons)


def test_a_second_identical_alert_within_the_dedup_window_is_suppressed_as_a_duplicate(
    server: RunningServer,
) -> None:
    first = _request_for(f"MRN-{uuid.uuid4().hex[:8]}")
    second = {**first, "hookInstance": str(uuid.uuid4())}

    shown = httpx.post(f"{server.base_url}{SERVICE}", json=first, timeout=30).json()
    again = httpx.post(f"{server.base_url}{SERVICE}", json=second, timeout=30).json()

    assert [card["indicator"] for card in shown["cards"]] == ["critical"]
    assert again["cards"] == []
    first_id, first_action, _ = _decision_of(server, first["hookInstance"])
    _, action, reasons = _decision_of(server, second["hookInstance"])
    assert first_action == "escalate"
    assert (action, reasons) == ("suppress", ["duplicate"])
    # The first call's events were committed with its decision and carry its id.
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            kinds = connection.scalars(
                select(PolicyEventRow.kind).where(PolicyEventRow.decision_id == first_id).order_by(PolicyEventRow.id)
            ).all()
    finally:
        engine.dispose()
    assert "AlertSurfaced" in kinds and "EscalationStarted" in kinds


def test_a_retried_hook_instance_records_its_policy_events_once(server: RunningServer) -> None:
    request = _request_for(f"MRN-{uuid.uuid4().hex[:8]}")

    first = httpx.post(f"{server.base_url}{SERVICE}", json=request, timeout=30).json()
    retried = httpx.post(f"{server.base_url}{SERVICE}", json=request, timeout=30).json()

    # The retry is answered as the first call was, not decided again as a duplicate of itself.
    assert retried == first and len(first["cards"]) == 1
    engine = create_engine(server.database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            patient = connection.scalar(
                select(HookCallRow.patient_key).where(HookCallRow.hook_instance == request["hookInstance"])
            )
            surfaced = connection.scalars(
                select(PolicyEventRow.id).where(
                    PolicyEventRow.patient_key == patient, PolicyEventRow.kind == "AlertSurfaced"
                )
            ).all()
    finally:
        engine.dispose()
    assert len(surfaced) == 1


def test_explain_shows_every_route_tried_and_why_then_the_mechanisms(server: RunningServer) -> None:
    request = _request_for(f"MRN-{uuid.uuid4().hex[:8]}")
    # Respiratory rate 20 scores 0 instead of 3: NEWS2 6, the medium band, so the high route is tried and fails.
    request["prefetch"]["vitals"]["entry"][0]["resource"]["valueQuantity"]["value"] = 20
    httpx.post(f"{server.base_url}{SERVICE}", json=request, timeout=30).raise_for_status()
    decision_id, _, _ = _decision_of(server, request["hookInstance"])

    explained = httpx.get(
        f"{server.base_url}/decisions/{decision_id}/explain", headers=dev_headers(Role.INFORMATICIST), timeout=30
    )

    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert (body["decision"]["action"], body["decision"]["route"]) == ("surface", "news2-medium")
    assert body["policy"]["id"] == "deterioration" and body["policy"]["version"].startswith("1.0.0+")
    assert (body["risk_output"]["scorer_id"], body["risk_output"]["band"]) == ("news2", "medium")
    trace = body["trace"]
    tried = [(attempt["route"], attempt["matched"]) for attempt in trace["routes_tried"]]
    assert tried == [("news2", True), ("news2-high", False), ("news2-medium", True)]
    # The route that did not match says which matcher failed, as a sentence.
    (why_not,) = trace["routes_tried"][1]["failed"]
    assert "band" in why_not
    assert trace["route_chosen"] == "news2-medium"
    mechanisms = [m["mechanism"] for m in trace["mechanisms"]]
    assert mechanisms[0] == "route" and "inhibition" in mechanisms


def test_explaining_an_unknown_decision_is_404(server: RunningServer) -> None:
    response = httpx.get(
        f"{server.base_url}/decisions/987654321/explain", headers=dev_headers(Role.INFORMATICIST), timeout=30
    )

    assert response.status_code == 404
