"""Live candidates through the HTTP app on a real database: informaticists stage them, shadow candidates record
their decisions without changing a card, a canary serves its bucket, and the kill switch reverts the next call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.catalog import ServiceCatalog, ServiceDefinition
from api.security import SecuritySettings
from api.security.staff import Role
from cdsctl.bootstrap import Container, build_container, create_app_from_container
from cdsctl.settings import Environment, Settings
from clinical.model import ClinicalContext
from policy.port import Action, Decision
from scoring.port import RiskOutput
from shadow.live import SHADOW_OUTCOMES, LiveShadow
from store import migrate
from store.repository import SqlUnitOfWork
from store.tables import ShadowDecisionRow
from tests.fakes import FakeScorer, ScriptedPolicy
from tests.hook_requests import MEDIUM_NEWS2, vitals_call
from tests.staff_tokens import dev_headers

INFORMATICIST = dev_headers(Role.INFORMATICIST, user="ada")
SERVICES = ("quiet", "loud", "killable", "audited", "refusals")


class RaisingPolicy:
    policy_id = "raising"
    version = "1"

    def decide(self, output: RiskOutput, context: ClinicalContext, now: datetime) -> Decision:
        raise RuntimeError("a candidate with a bug")


def _service(service_id: str, policy: str) -> ServiceDefinition:
    return ServiceDefinition.model_validate(
        {
            "id": service_id,
            "hook": "patient-view",
            "title": f"Test service {service_id}",
            "description": "A service for the live candidate tests.",
            "scorers": ["fake-high"],
            "policy": policy,
            "prefetch": {"patient": "Patient/{{context.patientId}}"},
        }
    )


@pytest.fixture(scope="module")
def container(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    migrate.upgrade(module_database_url)
    settings = Settings(
        environment=Environment.TEST,
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=module_database_url,
        hook_deadline_seconds=10,
        pseudonym_salt="candidates-salt",
        security=SecuritySettings(enabled=False),
    )
    # Quiet services suppress everything live; the loud one shows a card for every output.
    services = [_service(s, "suppressing") for s in SERVICES if s != "loud"] + [_service("loud", "showing")]
    built = build_container(
        settings,
        catalog=ServiceCatalog([*ServiceCatalog.load(), *services]),
        extra_scorers=[FakeScorer("fake-high")],
        extra_policies=[
            ScriptedPolicy("suppressing", action=Action.SUPPRESS),
            ScriptedPolicy("showing", action=Action.SURFACE),
            ScriptedPolicy("shouting", action=Action.ESCALATE),
            RaisingPolicy(),
        ],
    )
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app_from_container(container)) as test_client:
        yield test_client


def _call(client: TestClient, service: str, patient: str = "p1", prefetch: dict[str, Any] | None = None) -> Any:
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/nurse-1", "patientId": patient},
        "prefetch": prefetch or {"patient": {"resourceType": "Patient", "id": patient}},
    }
    response = client.post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200
    return body["hookInstance"], response.json()["cards"]


def _without_uuids(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in card.items() if k != "uuid"} for card in cards]


def _propose(client: TestClient, service: str, spec: str, **fields: Any) -> dict[str, Any]:
    response = client.post(
        f"/services/{service}/candidates", json={"spec": spec, "comment": "try it", **fields}, headers=INFORMATICIST
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _stage(client: TestClient, candidate: int, stage: str, **fields: Any) -> Any:
    return client.post(
        f"/candidates/{candidate}/stage",
        json={"stage": stage, "comment": f"to {stage}", **fields},
        headers=INFORMATICIST,
    )


def _shadow_rows(container: Container, hook_instance: str) -> list[ShadowDecisionRow]:
    assert isinstance(container.shadow, LiveShadow) and container.shadow.drain(timeout=20)
    with container.sessions() as session:
        return list(session.scalars(select(ShadowDecisionRow).where(ShadowDecisionRow.hook_instance == hook_instance)))


def test_a_shadow_candidate_records_its_decisions_and_changes_no_card(container: Container, client: TestClient) -> None:
    _, before = _call(client, "loud")
    candidate = _propose(client, "loud", "shouting")
    hook_instance, after = _call(client, "loud")
    assert _without_uuids(after) == _without_uuids(before) and after
    rows = _shadow_rows(container, hook_instance)
    assert [(r.candidate_id, r.action, r.live_action, r.served, r.policy_id) for r in rows] == [
        (candidate["id"], "escalate", "surface", False, "shouting")
    ]
    report = client.get(f"/candidates/{candidate['id']}/comparison", headers=INFORMATICIST).json()
    assert report["by_action"] == [{"live_action": "surface", "action": "escalate", "count": 1}]
    assert (report["changed"], report["agreement"], report["calls"]) == (1, 0.0, 1)


def test_a_candidate_whose_policy_raises_leaves_the_live_cards_unchanged(
    container: Container, client: TestClient
) -> None:
    _, before = _call(client, "loud", patient="p2")
    candidate = _propose(client, "loud", "raising")
    failed = SHADOW_OUTCOMES.labels(str(candidate["id"]), "failed")
    failures_before = failed._value.get()
    hook_instance, after = _call(client, "loud", patient="p2")
    assert _without_uuids(after) == _without_uuids(before) and after
    assert "raising" not in {r.policy_id for r in _shadow_rows(container, hook_instance)}
    assert failed._value.get() == failures_before + 1


def test_a_canary_serves_its_bucket_and_the_kill_switch_reverts_the_very_next_call(
    container: Container, client: TestClient
) -> None:
    candidate = _propose(client, "killable", "showing", fraction=1.0)
    assert _call(client, "killable")[1] == []  # in shadow: nothing shown
    assert _stage(client, candidate["id"], "canary").json()["stage"] == "canary"
    hook_instance, cards = _call(client, "killable")
    assert len(cards) == 1  # every patient is in a canary of fraction 1.0
    (row,) = _shadow_rows(container, hook_instance)
    assert row.served and row.bucket is not None and 0.0 <= row.bucket < 1.0
    killed = client.post(f"/candidates/{candidate['id']}/kill", json={"comment": "stop"}, headers=INFORMATICIST)
    assert killed.status_code == 200 and killed.json()["stage"] == "off"
    hook_instance, cards = _call(client, "killable")
    assert cards == []
    assert _shadow_rows(container, hook_instance) == []  # an off candidate is not evaluated at all


def test_every_stage_change_is_kept_in_the_history_and_the_audit_chain(
    container: Container, client: TestClient
) -> None:
    candidate = _propose(client, "audited", "showing", fraction=0.25)
    for stage in ("canary", "live", "canary", "shadow"):
        assert _stage(client, candidate["id"], stage).status_code == 200
    client.post(f"/candidates/{candidate['id']}/kill", headers=INFORMATICIST)
    read = client.get(f"/candidates/{candidate['id']}", headers=INFORMATICIST).json()
    moves = [(h["from_stage"], h["to_stage"]) for h in read["history"]]
    path = ["shadow", "canary", "live", "canary", "shadow", "off"]
    assert moves == list(zip([None, *path[:-1]], path, strict=True))
    assert {h["actor"] for h in read["history"]} == {candidate["created_by"]}
    assert read["history"][2]["comment"] == "to live"
    with SqlUnitOfWork(container.engine) as uow:
        records = [r for r in uow.repo.audit_records() if r.subject == f"candidate:{candidate['id']}"]
        assert uow.repo.verify_audit_chain().ok
    assert [(r.kind, r.payload["to"]) for r in records] == [
        ("candidate-created", "shadow"),
        *[("candidate-stage-changed", s) for s in ("canary", "live", "canary", "shadow")],
        ("candidate-killed", "off"),
    ]
    assert all(r.actor == candidate["created_by"] and "to live" not in str(r.payload) for r in records)
    listed = client.get("/candidates", params={"service_id": "audited"}, headers=INFORMATICIST).json()
    assert [c["stage"] for c in listed["candidates"]] == ["off"]


def test_candidates_are_changed_only_by_informaticists(client: TestClient) -> None:
    assert client.post("/services/quiet/candidates", json={"spec": "showing"}).status_code == 401
    clinician = dev_headers(Role.CLINICIAN)
    assert client.post("/services/quiet/candidates", json={"spec": "showing"}, headers=clinician).status_code == 403
    assert client.get("/candidates", headers=clinician).status_code == 403
    listed = client.get("/candidates", params={"service_id": "quiet"}, headers=INFORMATICIST).json()
    assert listed["candidates"] == []


@pytest.mark.parametrize(
    ("service", "body", "status"),
    [
        ("refusals", {"spec": "no-such-policy"}, 422),
        ("refusals", {"spec": "/etc/passwd"}, 422),
        ("refusals", {"spec": "../policy/bundled/deterioration.yaml"}, 422),
        ("refusals", {"spec": "suppressing@0.2"}, 422),  # a threshold, but the service has no model
        ("refusals", {"spec": "showing", "fraction": 0}, 400),
        ("no-such-service", {"spec": "showing"}, 404),
        ("sepsis-risk", {"spec": "deterioration", "model_version": "../../etc"}, 422),
        ("sepsis-risk", {"spec": "deterioration", "model_version": "9.9.9"}, 422),
        ("sepsis-risk", {"spec": "deterioration@1.5"}, 422),
    ],
)
def test_a_candidate_that_cannot_run_is_refused(client: TestClient, service: str, body: Any, status: int) -> None:
    response = client.post(f"/services/{service}/candidates", json=body, headers=INFORMATICIST)
    assert response.status_code == status, response.text


def test_stages_are_refused_out_of_order_and_for_a_second_serving_candidate(client: TestClient) -> None:
    first = _propose(client, "refusals", "showing")
    second = _propose(client, "refusals", "shouting")
    skipped = _stage(client, first["id"], "live")
    assert skipped.status_code == 409 and "not-adjacent" in skipped.json()["error"]["message"]
    assert _stage(client, first["id"], "canary").status_code == 200
    crowded = _stage(client, second["id"], "canary")
    assert crowded.status_code == 409 and "another-candidate-serves" in crowded.json()["error"]["message"]
    assert _stage(client, 999_999, "canary").status_code == 404


def test_threshold_and_model_candidates_of_the_sepsis_service_are_recognised(client: TestClient) -> None:
    threshold = _propose(client, "sepsis-risk", "deterioration@0.02")
    model = _propose(client, "sepsis-risk", "deterioration", model_version="1.1.0")
    policy = _propose(client, "sepsis-risk", "surface-all")
    assert (threshold["kind"], model["kind"], policy["kind"]) == ("threshold", "model", "policy")
    for made in (threshold, model, policy):
        client.post(f"/candidates/{made['id']}/kill", headers=INFORMATICIST)


def test_a_routed_policy_candidate_shadows_the_bundled_news2_service(container: Container, client: TestClient) -> None:
    candidate = _propose(client, "deterioration-news2", "surface-all")
    prefetch = vitals_call("news-1", MEDIUM_NEWS2)["prefetch"]
    first, _ = _call(client, "deterioration-news2", "news-1", prefetch)
    second, _ = _call(client, "deterioration-news2", "news-1", prefetch)
    rows = _shadow_rows(container, first) + _shadow_rows(container, second)
    assert [(r.scorer_id, r.policy_id, r.served) for r in rows] == [("news2", "surface-all", False)] * 2
    assert all(r.live_action is not None and r.route for r in rows)
    report = client.get(f"/candidates/{candidate['id']}/comparison", headers=INFORMATICIST).json()
    assert report["decisions"] == 2 and sum(row["count"] for row in report["by_action"]) == 2
    client.post(f"/candidates/{candidate['id']}/kill", headers=INFORMATICIST)
