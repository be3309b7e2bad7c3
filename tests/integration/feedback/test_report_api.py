"""GET /feedback/report and `cdsctl feedback report` on a real database: figures read back from what was recorded,
who may read it, and no patient or user identifier in clear in any format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from api.security import SecuritySettings
from api.security.staff import Role
from cdsctl.bootstrap import Container, build_container, create_app_from_container
from cdsctl.cli import app as cli
from store.tables import CardActionRow, CardRow, RiskOutputRow
from tests.integration.feedback.support import SERVICE, medium_news2_call, new_patient
from tests.staff_tokens import dev_headers, staff_auth_settings, staff_headers

INFORMATICIST = dev_headers(Role.INFORMATICIST, user="informaticist-adalovelace")
NURSE = dev_headers(Role.CLINICIAN, user="nurse-florence-n")
RAW_PATIENTS = [new_patient("MRN-0042-Jones") for _ in range(3)]
DOCTOR = "Practitioner/dr-gregory-h"
COMMENTS = ("John Q Public on the ward", "userComment with MRN 5551212")


@pytest.fixture(scope="module")
def recorded(client: TestClient, container: Container) -> dict[str, Any]:
    """Three patients' cards: one dismissed (with a comment), one overridden through CDS Hooks feedback (with a
    comment), one left unanswered; and one action on a card never sent."""
    uuids = [
        client.post(f"/cds-services/{SERVICE}", json=medium_news2_call(patient, DOCTOR)).json()["cards"][0]["uuid"]
        for patient in RAW_PATIENTS
    ]
    now = datetime.now(UTC)
    body = {"action": "dismiss", "at": now.isoformat(), "reason": "too-frequent", "comment": COMMENTS[0]}
    assert client.post(f"/cards/{uuids[0]}/actions", json=body, headers=NURSE).status_code == 200
    override = {"reason": {"code": "already-treated", "system": "urn:x"}, "userComment": COMMENTS[1]}
    item = {"card": uuids[1], "outcome": "overridden", "outcomeTimestamp": now.isoformat(), "overrideReason": override}
    assert client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [item]}).status_code == 200
    ghost = {"action": "acknowledge", "at": now.isoformat()}
    assert client.post("/cards/never-sent-card/actions", json=ghost, headers=NURSE).status_code == 404
    with container.engine.connect() as connection:
        patient_keys = (
            connection.execute(
                select(RiskOutputRow.patient_key)
                .join(CardRow, CardRow.hook_instance == RiskOutputRow.hook_instance)
                .where(CardRow.uuid.in_(uuids))
            )
            .scalars()
            .all()
        )
        pseudonym = connection.execute(select(CardActionRow.user_pseudonym).limit(1)).scalar_one()
    assert len(patient_keys) == len(RAW_PATIENTS)
    return {"cards": uuids, "patient_keys": patient_keys, "pseudonym": pseudonym}


def _forbidden_strings(recorded: dict[str, Any]) -> list[str]:
    return [
        *RAW_PATIENTS,
        "Jones",
        *recorded["patient_keys"],
        "gregory",
        "florence",
        "adalovelace",
        recorded["pseudonym"],
        *COMMENTS,
        "5551212",
    ]


def test_the_report_counts_what_was_recorded(client: TestClient, recorded: dict[str, Any]) -> None:
    answer = client.get("/feedback/report", headers=INFORMATICIST)

    assert answer.status_code == 200
    report = answer.json()
    assert report["summary"]["cards_shown"] >= len(recorded["cards"])
    assert report["summary"]["unknown_card_responses"] >= 1
    reasons = {r["reason"] for r in report["reasons"]}
    assert {"too-frequent", "already-treated"} <= reasons
    assert {r["group"] for r in report["rates"]["scorer"]} >= {"news2"}


@pytest.mark.parametrize("fmt", ["json", "html", "csv"])
def test_no_patient_or_user_identifier_appears_in_clear_in_the_report(
    client: TestClient, recorded: dict[str, Any], fmt: str
) -> None:
    text = client.get("/feedback/report", params={"format": fmt}, headers=INFORMATICIST).text

    leaked = [s for s in _forbidden_strings(recorded) if s.lower() in text.lower()]
    assert leaked == []


def test_the_html_report_is_one_self_contained_page(client: TestClient, recorded: dict[str, Any]) -> None:
    answer = client.get("/feedback/report", params={"format": "html"}, headers=INFORMATICIST)

    assert answer.headers["content-type"].startswith("text/html")
    assert "<svg" in answer.text
    assert "<script" not in answer.text and "http://" not in answer.text.replace("http://www.w3.org/2000/svg", "")


def test_a_window_in_the_future_reports_nothing(client: TestClient, recorded: dict[str, Any]) -> None:
    since = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    summary = client.get("/feedback/report", params={"since": since}, headers=INFORMATICIST).json()["summary"]

    assert (summary["cards_shown"], summary["responses"], summary["unknown_card_responses"]) == (0, 0, 0)


def test_only_informaticists_may_read_the_report(client: TestClient) -> None:
    assert client.get("/feedback/report").status_code == 401
    assert client.get("/feedback/report", headers=NURSE).status_code == 403


def test_the_command_writes_the_same_report(
    client: TestClient, recorded: dict[str, Any], container: Container, tmp_path: Path
) -> None:
    url = container.settings.resolved_database_url
    runner = CliRunner()
    as_json = runner.invoke(cli, ["feedback", "report", "--format", "json", "--database-url", url])
    page = tmp_path / "report" / "feedback.html"
    as_html = runner.invoke(cli, ["feedback", "report", "--out", str(page), "--database-url", url])

    assert as_json.exit_code == 0, as_json.output
    from_cli = orjson.loads(as_json.stdout)
    from_api = client.get("/feedback/report", headers=INFORMATICIST).json()
    assert from_cli["summary"] == from_api["summary"]
    assert as_html.exit_code == 0, as_html.output
    assert "<svg" in page.read_text(encoding="utf-8")


def test_with_security_on_the_report_needs_a_staff_token_with_the_informaticist_role(
    container: Container, tmp_path: Path
) -> None:
    settings = container.settings.model_copy(
        update={"security": SecuritySettings(enabled=True), "staff_auth": staff_auth_settings(), "data_dir": tmp_path}
    )
    secured = build_container(settings)
    try:
        with TestClient(create_app_from_container(secured)) as client:
            assert client.get("/feedback/report", headers=INFORMATICIST).status_code == 401  # headers are ignored
            assert client.get("/feedback/report", headers=staff_headers(Role.CLINICIAN)).status_code == 403
            assert client.get("/feedback/report", headers=staff_headers(Role.INFORMATICIST)).status_code == 200
    finally:
        secured.engine.dispose()
