"""The policies API on the real app: informaticists validate, store, compare and activate policy versions; an
activated version is what the next hook call decides with; every change is audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.admin.service import AdminAuditKind
from api.security.staff import Role
from policy.document import BUNDLED_DIR
from tests.integration.api.admin_harness import SALT, AdminApp, admin_app
from tests.staff_tokens import expected_pseudonym, staff_headers

BUNDLED = (BUNDLED_DIR / "deterioration.yaml").read_text(encoding="utf-8")
# The same policy with a new number and one card changed: the high NEWS2 card's summary.
CHANGED = BUNDLED.replace('version: "1.0.0"', 'version: "1.1.0"').replace(
    "emergency assessment", "review at the bedside now"
)
INFORMATICIST = staff_headers(Role.INFORMATICIST, sub="informaticist-policies")
AUTHOR = expected_pseudonym(SALT, "informaticist-policies")


@pytest.fixture(scope="module")
def app(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminApp]:
    with admin_app(module_database_url, tmp_path_factory.mktemp("data")) as running:
        yield running


def _store(app: AdminApp, text: str, comment: str = "a change", policy: str = "deterioration") -> Any:
    return app.client.post(
        f"/policies/{policy}/versions", json={"text": text, "comment": comment}, headers=INFORMATICIST
    )


def test_validation_reports_every_error_at_once_each_with_its_path(app: AdminApp) -> None:
    broken = BUNDLED.replace("dedup: 4h", "dedup: soon").replace("match: {band: high}", "match: {band: extreme}")

    response = app.client.post("/policies/validate", json={"text": broken}, headers=INFORMATICIST)

    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    paths = [error.split(":")[0] for error in body["errors"]]
    assert "defaults.dedup" in paths
    assert "routes[0].routes[0].match.band" in paths


def test_a_valid_document_validates_with_its_id_version_and_hash(app: AdminApp) -> None:
    body = app.client.post("/policies/validate", json={"text": CHANGED}, headers=INFORMATICIST).json()

    assert (body["valid"], body["errors"], body["policy_id"], body["version"]) == (True, [], "deterioration", "1.1.0")
    assert len(body["content_hash"]) == 64


def test_storing_a_version_records_its_author_and_comment_and_audits_it_once(app: AdminApp) -> None:
    first = _store(app, BUNDLED, comment="the bundled policy, stored as it ships")
    again = _store(app, BUNDLED, comment="the same content again")

    assert first.status_code == 201, first.text
    assert again.status_code == 200
    stored = first.json()
    assert (stored["version"], stored["author"], stored["active"]) == ("1.0.0", AUTHOR, False)
    assert stored["comment"] == "the bundled policy, stored as it ships"
    records = [r for r in app.audit(AdminAuditKind.POLICY_VERSION_CREATED) if r.subject == "policy:deterioration@1.0.0"]
    assert len(records) == 1
    assert records[0].actor == AUTHOR and records[0].payload["content_hash"] == stored["content_hash"]
    assert app.audit_chain_ok()


def test_new_content_under_a_used_version_number_is_refused_with_409(app: AdminApp) -> None:
    _store(app, BUNDLED)
    edited = BUNDLED.replace("dedup: 4h", "dedup: 2h")

    response = _store(app, edited)

    assert response.status_code == 409
    assert "never edited in place" in response.json()["error"]["message"]


def test_an_invalid_document_is_refused_with_every_error_and_nothing_is_stored(app: AdminApp) -> None:
    broken = BUNDLED.replace('version: "1.0.0"', 'version: "9.9.9"').replace("dedup: 4h", "dedup: soon")

    response = _store(app, broken)
    versions = app.client.get("/policies/deterioration/versions", headers=INFORMATICIST).json()

    assert response.status_code == 400
    assert any(error.startswith("defaults.dedup:") for error in response.json()["errors"])
    assert "9.9.9" not in [v["version"] for v in versions]


def test_a_document_stored_under_another_policys_name_is_refused(app: AdminApp) -> None:
    response = _store(app, CHANGED, policy="surface-all")

    assert response.status_code == 400
    assert "not 'surface-all'" in response.json()["errors"][0]


def test_a_version_needs_a_comment(app: AdminApp) -> None:
    response = app.client.post("/policies/deterioration/versions", json={"text": CHANGED}, headers=INFORMATICIST)

    assert response.status_code == 400


def test_the_diff_shows_the_yaml_change_and_names_the_route_changed(app: AdminApp) -> None:
    _store(app, BUNDLED)
    _store(app, CHANGED, comment="a clearer high-risk card")

    response = app.client.get(
        "/policies/deterioration/diff", params={"from": "1.0.0", "to": "1.1.0"}, headers=INFORMATICIST
    )

    assert response.status_code == 200, response.text
    diff = response.json()
    assert '-version: "1.0.0"' in diff["unified"] and '+version: "1.1.0"' in diff["unified"]
    assert any(line.startswith("+") and "review at the bedside now" in line for line in diff["unified"].splitlines())
    assert diff["routes_changed"] == ["news2/news2-high"]
    assert diff["routes_added"] == diff["routes_removed"] == []
    assert diff["changed_fields"] == ["routes"]


def test_reading_versions_lists_them_and_unknown_ones_are_404(app: AdminApp) -> None:
    _store(app, BUNDLED)

    listed = app.client.get("/policies/deterioration/versions", headers=INFORMATICIST)
    one = app.client.get("/policies/deterioration/versions/1.0.0", headers=INFORMATICIST)
    missing = app.client.get("/policies/deterioration/versions/7.7.7", headers=INFORMATICIST)
    no_policy = app.client.get("/policies/no-such-policy/versions", headers=INFORMATICIST)
    bad_diff = app.client.get(
        "/policies/deterioration/diff", params={"from": "1.0.0", "to": "7.7.7"}, headers=INFORMATICIST
    )

    assert listed.status_code == 200 and "1.0.0" in [v["version"] for v in listed.json()]
    assert one.status_code == 200 and one.json()["text"] == BUNDLED
    assert (missing.status_code, no_policy.status_code, bad_diff.status_code) == (404, 404, 404)


def test_an_activated_version_is_what_the_next_hook_call_decides_with(app: AdminApp) -> None:
    _store(app, BUNDLED)
    _store(app, CHANGED)
    _, before = app.call_hook()

    activated = app.client.post("/policies/deterioration/versions/1.1.0/activate", headers=INFORMATICIST)
    after_call, after = app.call_hook()
    listed = {p["policy_id"]: p for p in app.client.get("/policies", headers=INFORMATICIST).json()}
    # Back to the shipped content, so the module's other tests see the bundled behaviour.
    restored = app.client.post("/policies/deterioration/versions/1.0.0/activate", headers=INFORMATICIST)
    _, restored_answer = app.call_hook()

    assert activated.status_code == 200, activated.text
    assert "emergency assessment" in before["cards"][0]["summary"]
    assert "review at the bedside now" in after["cards"][0]["summary"]
    assert app.decision_of(after_call)[3].startswith("1.1.0+")
    assert listed["deterioration"]["source"] == "stored"
    assert listed["deterioration"]["active_version"] == "1.1.0"
    assert listed["deterioration"]["live_version"].startswith("1.1.0+")
    assert listed["surface-all"]["source"] == "bundled"
    assert restored.json()["previous_version"] == "1.1.0"
    assert "emergency assessment" in restored_answer["cards"][0]["summary"]
    # The only activations in this module's database: the first had no stored version before it.
    activations = app.audit(AdminAuditKind.POLICY_VERSION_ACTIVATED)
    assert [(r.subject, r.payload["previous_version"]) for r in activations] == [
        ("policy:deterioration@1.1.0", None),
        ("policy:deterioration@1.0.0", "1.1.0"),
    ]
    assert all(r.actor == AUTHOR for r in activations)


def test_activating_an_unknown_version_is_404(app: AdminApp) -> None:
    response = app.client.post("/policies/deterioration/versions/8.8.8/activate", headers=INFORMATICIST)

    assert response.status_code == 404


def test_explain_takes_an_informaticist_token_and_refuses_an_ehr_token(app: AdminApp) -> None:
    hook_instance, _ = app.call_hook()
    decision_id = app.decision_of(hook_instance)[0]
    path = f"/decisions/{decision_id}/explain"

    explained = app.client.get(path, headers=INFORMATICIST)
    by_ehr = app.client.get(path, headers=app.ehr_headers(path))
    by_clinician = app.client.get(path, headers=staff_headers(Role.CLINICIAN))

    assert explained.status_code == 200 and explained.json()["decision"]["id"] == decision_id
    assert (by_ehr.status_code, by_clinician.status_code) == (401, 403)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/policies"),
        ("POST", "/policies/validate"),
        ("GET", "/policies/deterioration/versions"),
        ("POST", "/policies/deterioration/versions"),
        ("GET", "/policies/deterioration/versions/1.0.0"),
        ("POST", "/policies/deterioration/versions/1.0.0/activate"),
        ("GET", "/policies/deterioration/diff?from=1.0.0&to=1.1.0"),
    ],
)
def test_every_policies_endpoint_needs_an_informaticist(app: AdminApp, method: str, path: str) -> None:
    body = {"text": CHANGED, "comment": "x"} if method == "POST" else None

    anonymous = app.client.request(method, path, json=body)
    by_ehr = app.client.request(method, path, json=body, headers=app.ehr_headers(path.split("?")[0]))
    by_operator = app.client.request(method, path, json=body, headers=staff_headers(Role.OPERATOR, Role.CLINICIAN))

    assert (anonymous.status_code, by_ehr.status_code, by_operator.status_code) == (401, 401, 403)
    assert anonymous.json() == {"error": {"status": 401, "message": "authentication required"}}
