"""CDS Hooks feedback that arrives after a newer response on the same alert is stored but changes no policy state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.security.staff import Role
from cdsctl.bootstrap import Container
from store.tables import FeedbackRow, PolicyEventRow
from tests.integration.feedback.support import SERVICE, medium_news2_call, new_patient
from tests.staff_tokens import dev_headers


def _dismissals(container: Container, patient_key: str) -> int:
    with container.engine.connect() as connection:
        rows = connection.execute(
            select(PolicyEventRow.id)
            .where(PolicyEventRow.kind == "AlertDismissed")
            .where(PolicyEventRow.payload["patient"].as_string() == patient_key)
        ).all()
    return len(rows)


def _patient_key(container: Container, card: str) -> str:
    with container.unit_of_work() as uow:
        stored = uow.repo.find_card(card)
        assert stored is not None and stored.patient_key is not None
        return stored.patient_key


def _override(client: TestClient, card: str, at: datetime) -> int:
    item = {"card": card, "outcome": "overridden", "outcomeTimestamp": at.isoformat()}
    return client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [item]}).status_code


def test_an_override_older_than_an_acknowledgement_is_kept_but_does_not_lock_the_alert_out(
    client: TestClient, container: Container
) -> None:
    card = client.post(f"/cds-services/{SERVICE}", json=medium_news2_call(new_patient("late"))).json()["cards"][0]
    now = datetime.now(UTC)
    acknowledged = client.post(
        f"/cards/{card['uuid']}/actions",
        json={"action": "acknowledge", "at": now.isoformat()},
        headers=dev_headers(Role.CLINICIAN, user="nurse-1"),
    )
    assert acknowledged.status_code == 200

    assert _override(client, card["uuid"], now - timedelta(minutes=5)) == 200

    assert _dismissals(container, _patient_key(container, card["uuid"])) == 0
    with container.engine.connect() as connection:
        stored = connection.execute(select(FeedbackRow.outcome).where(FeedbackRow.card_uuid == card["uuid"])).all()
    assert [row.outcome for row in stored] == ["overridden"]


def test_an_override_newer_than_every_other_response_still_locks_the_alert_out(
    client: TestClient, container: Container
) -> None:
    card = client.post(f"/cds-services/{SERVICE}", json=medium_news2_call(new_patient("fresh"))).json()["cards"][0]

    assert _override(client, card["uuid"], datetime.now(UTC)) == 200

    assert _dismissals(container, _patient_key(container, card["uuid"])) == 1
