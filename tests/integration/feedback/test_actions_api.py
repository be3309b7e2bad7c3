"""POST /cards/{uuid}/actions on a real database: what is stored and linked, what the audit log keeps, duplicates,
late and unknown-card actions, roles, and the effect on the next hook call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.security.staff import Role
from cdsctl.bootstrap import Container
from store.tables import AuditRow, CardActionRow, DecisionRow, PolicyEventRow, RiskOutputRow
from tests.integration.feedback.support import SERVICE, medium_news2_call, new_patient
from tests.staff_tokens import dev_headers

CLINICIAN = dev_headers(Role.CLINICIAN, user="nurse-jane-doe")


def _card(client: TestClient, patient: str) -> dict[str, Any]:
    cards = client.post(f"/cds-services/{SERVICE}", json=medium_news2_call(patient)).json()["cards"]
    assert len(cards) == 1
    card: dict[str, Any] = cards[0]
    return card


def _act(client: TestClient, card: str, headers: dict[str, str] = CLINICIAN, **body: Any) -> Any:
    body.setdefault("at", datetime.now(UTC).isoformat())
    return client.post(f"/cards/{card}/actions", json=body, headers=headers)


def _rows(engine: Engine, card: str) -> list[CardActionRow]:
    with engine.connect() as connection:
        return list(connection.execute(select(CardActionRow).where(CardActionRow.card_uuid == card)).all())  # type: ignore[arg-type]


def test_a_dismissal_is_stored_linked_to_what_produced_the_card(client: TestClient, container: Container) -> None:
    card = _card(client, new_patient("link"))["uuid"]

    answer = _act(client, card, action="dismiss", reason="known-condition", comment="Mrs Smith, MRN 12345, on NIV")

    assert answer.status_code == 200
    assert answer.json() == {"card": card, "action": "dismiss", "status": "applied", "events": ["AlertDismissed"]}
    (row,) = _rows(container.engine, card)
    with container.engine.connect() as connection:
        decision = connection.execute(
            select(DecisionRow.id, DecisionRow.policy_version, RiskOutputRow.id.label("output"))
            .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
            .where(DecisionRow.id == row.decision_id)
        ).one()
    assert (row.risk_output_id, row.policy_version) == (decision.output, decision.policy_version)
    assert (row.alert_key, row.user_role, row.reason_code) == ("news2", "clinician", "known-condition")
    assert row.user_pseudonym.startswith("staff:") and "jane" not in row.user_pseudonym
    assert row.comment == "Mrs Smith, MRN 12345, on NIV"


def test_the_audit_record_of_an_action_never_holds_its_comment(client: TestClient, container: Container) -> None:
    card = _card(client, new_patient("audit"))["uuid"]

    _act(client, card, action="dismiss", reason="other", comment="MRN 99887766 seen by outreach")

    with container.engine.connect() as connection:
        audit = connection.execute(select(AuditRow).where(AuditRow.subject == f"card:{card}")).one()
    assert audit.kind == "card-action"
    assert "99887766" not in str(audit.payload) and "outreach" not in str(audit.payload)
    assert len(audit.payload["comment_sha256"]) == 64


def test_a_dismissed_alert_is_locked_out_on_the_next_call(client: TestClient, container: Container) -> None:
    patient = new_patient("lock")
    card = _card(client, patient)["uuid"]
    _act(client, card, action="dismiss", reason="too-frequent")

    call = medium_news2_call(patient)
    assert client.post(f"/cds-services/{SERVICE}", json=call).json() == {"cards": []}
    with container.engine.connect() as connection:
        reasons = connection.execute(
            select(DecisionRow.reasons)
            .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
            .where(RiskOutputRow.hook_instance == call["hookInstance"])
        ).scalar_one()
    assert "locked-out" in reasons


def test_a_resent_action_is_recorded_once(client: TestClient, container: Container) -> None:
    card = _card(client, new_patient("dup"))["uuid"]
    at = datetime.now(UTC).isoformat()

    first = _act(client, card, action="acknowledge", at=at).json()
    again = _act(client, card, action="acknowledge", at=at).json()

    assert (first["status"], again["status"]) == ("applied", "duplicate")
    assert len(_rows(container.engine, card)) == 1


def test_a_late_older_deferral_does_not_reopen_what_a_newer_acknowledgement_settled(
    client: TestClient, container: Container
) -> None:
    patient = new_patient("order")
    card = _card(client, patient)["uuid"]
    now = datetime.now(UTC)
    _act(client, card, action="acknowledge", at=now.isoformat())

    late = _act(
        client,
        card,
        action="defer",
        at=(now - timedelta(minutes=5)).isoformat(),
        until=(now + timedelta(hours=4)).isoformat(),
    )

    assert late.json()["status"] == "superseded"
    with container.engine.connect() as connection:
        kinds = connection.execute(
            select(PolicyEventRow.kind)
            .where(PolicyEventRow.payload["alert_key"].as_string() == "news2")
            .where(PolicyEventRow.kind == "AlertSnoozed")
        ).all()
    assert kinds == []
    assert {r.action: r.superseded for r in _rows(container.engine, card)} == {"acknowledge": False, "defer": True}


def test_an_action_older_than_cds_hooks_feedback_on_the_same_alert_changes_nothing(
    client: TestClient, container: Container
) -> None:
    card = _card(client, new_patient("cds-order"))["uuid"]
    now = datetime.now(UTC)
    item = {"card": card, "outcome": "overridden", "outcomeTimestamp": now.isoformat()}
    assert client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [item]}).status_code == 200

    late = _act(
        client,
        card,
        action="defer",
        at=(now - timedelta(minutes=1)).isoformat(),
        until=(now + timedelta(hours=1)).isoformat(),
    )

    assert late.json() == {"card": card, "action": "defer", "status": "superseded", "events": []}


def test_an_action_on_a_card_never_sent_is_kept_apart_and_answered_404(
    client: TestClient, container: Container
) -> None:
    answer = _act(client, "00000000-0000-4000-8000-00000000dead", action="acknowledge")

    assert answer.status_code == 404
    assert "00000000-0000-4000-8000-00000000dead" in answer.json()["error"]["message"]
    (row,) = _rows(container.engine, "00000000-0000-4000-8000-00000000dead")
    assert (row.card_known, row.decision_id, row.patient_key) == (False, None, None)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"action": "dismiss"}, "coded reason"),
        ({"action": "dismiss", "reason": "because"}, "reason"),
        ({"action": "defer"}, "until"),
        ({"action": "escalate"}, "escalate"),
        ({"action": "snooze-forever"}, "action"),
    ],
)
def test_an_incomplete_action_is_refused_with_400(client: TestClient, body: dict[str, Any], fragment: str) -> None:
    answer = _act(client, "any-card", **body)

    assert answer.status_code == 400
    assert fragment in answer.json()["error"]["message"]


def test_a_card_uuid_longer_than_ours_is_refused_before_anything_is_stored(
    client: TestClient, container: Container
) -> None:
    answer = _act(client, "x" * 37, action="acknowledge")

    assert answer.status_code == 400
    assert _rows(container.engine, "x" * 37) == []


def test_only_staff_with_the_clinician_role_may_act(client: TestClient) -> None:
    assert _act(client, "any-card", headers={}, action="acknowledge").status_code == 401
    operator = _act(client, "any-card", headers=dev_headers(Role.OPERATOR), action="acknowledge")
    assert operator.status_code == 403
