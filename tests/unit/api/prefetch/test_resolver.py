"""Prefetch resolution against an in-memory FHIR server (httpx.MockTransport): which keys are used, fetched, refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from api.prefetch import (
    IssueReason,
    PrefetchRequestError,
    PrefetchResolver,
    PrefetchUnavailable,
    UnavailableReason,
)

pytestmark = pytest.mark.anyio

BASE = "https://ehr.example/fhir"
TOKEN = "opaque-token-42"
PATIENT = {"resourceType": "Patient", "id": "pat-77", "gender": "female"}
TEMPLATES = {"patient": "Patient/{{context.patientId}}"}
Handler = Callable[[httpx.Request], httpx.Response]


class FakeEhr:
    """Answers GETs from a table of path-and-query to response, and remembers every request."""

    def __init__(self, answers: dict[str, httpx.Response] | None = None) -> None:
        self.answers = answers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        target = request.url.raw_path.decode()
        return self.answers.get(target, httpx.Response(404, json={"resourceType": "OperationOutcome"}))

    def resolver(self, **options: Any) -> PrefetchResolver:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self))
        settings: dict[str, Any] = {"allow_http": False, "salt": "test-salt", "timeout": 2.0, **options}
        return PrefetchResolver(client, **settings)


def _request(**members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": BASE,
        "fhirAuthorization": {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "x",
            "subject": "svc",
        },
        "context": {"userId": "Practitioner/doc-1", "patientId": "pat-77"},
    }
    body.update(members)
    return {key: value for key, value in body.items() if value is not None}


async def test_a_key_the_ehr_sent_is_used_as_is_without_a_request() -> None:
    ehr = FakeEhr()
    resolved = await ehr.resolver().resolve(TEMPLATES, _request(prefetch={"patient": PATIENT}))
    assert resolved.values == {"patient": PATIENT}
    assert resolved.fetched == []
    assert ehr.requests == []


async def test_a_null_key_means_no_data_and_nothing_is_fetched() -> None:
    ehr = FakeEhr()
    resolved = await ehr.resolver().resolve(TEMPLATES, _request(prefetch={"patient": None}))
    assert resolved.values == {"patient": None}
    assert (resolved.issues, ehr.requests) == ([], [])


async def test_an_operation_outcome_sent_by_the_ehr_is_recorded_and_counts_as_no_data() -> None:
    ehr = FakeEhr()
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    resolved = await ehr.resolver().resolve(TEMPLATES, _request(prefetch={"patient": outcome}))
    assert resolved.values == {"patient": None}
    assert [(i.key, i.reason) for i in resolved.issues] == [("patient", IssueReason.OPERATION_OUTCOME)]
    assert ehr.requests == []


async def test_a_service_may_fetch_a_key_the_ehr_answered_with_an_operation_outcome() -> None:
    ehr = FakeEhr({"/fhir/Patient/pat-77": httpx.Response(200, json=PATIENT)})
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    resolved = await ehr.resolver().resolve(
        TEMPLATES, _request(prefetch={"patient": outcome}), fetch_after_operation_outcome=True
    )
    assert resolved.values == {"patient": PATIENT}
    assert resolved.fetched == ["patient"]
    assert [i.reason for i in resolved.issues] == [IssueReason.OPERATION_OUTCOME]


async def test_a_missing_key_is_read_from_the_fhir_server_with_the_bearer_token() -> None:
    ehr = FakeEhr({"/fhir/Patient/pat-77": httpx.Response(200, json=PATIENT)})
    resolved = await ehr.resolver().resolve(TEMPLATES, _request())
    assert resolved.values == {"patient": PATIENT}
    assert resolved.fetched == ["patient"]
    assert [(str(r.url), r.headers["authorization"]) for r in ehr.requests] == [
        (f"{BASE}/Patient/pat-77", f"Bearer {TOKEN}")
    ]


async def test_without_a_fhir_server_a_missing_key_is_a_precondition_failure() -> None:
    ehr = FakeEhr()
    templates = {**TEMPLATES, "vitals": "Observation?subject={{context.patientId}}"}
    with pytest.raises(PrefetchUnavailable) as raised:
        await ehr.resolver().resolve(
            templates, _request(fhirServer=None, fhirAuthorization=None, prefetch={"patient": PATIENT})
        )
    assert (raised.value.keys, raised.value.reason) == (("vitals",), UnavailableReason.NO_FHIR_SERVER)
    assert "vitals" in str(raised.value)


async def test_without_an_access_token_a_missing_key_is_a_precondition_failure() -> None:
    ehr = FakeEhr({"/fhir/Patient/pat-77": httpx.Response(200, json=PATIENT)})
    with pytest.raises(PrefetchUnavailable) as raised:
        await ehr.resolver().resolve(TEMPLATES, _request(fhirAuthorization=None))
    assert raised.value.reason is UnavailableReason.NO_ACCESS_TOKEN
    assert ehr.requests == []


async def test_an_optional_key_that_cannot_be_had_is_no_data_with_an_issue() -> None:
    resolved = (
        await FakeEhr()
        .resolver()
        .resolve(TEMPLATES, _request(fhirServer=None, fhirAuthorization=None), optional={"patient"})
    )
    assert resolved.values == {"patient": None}
    assert [(i.reason, i.detail) for i in resolved.issues] == [(IssueReason.UNAVAILABLE, "no-fhir-server")]


async def test_fhir_authorization_without_a_fhir_server_is_a_bad_request() -> None:
    with pytest.raises(PrefetchRequestError, match="only allowed together with fhirServer"):
        await FakeEhr().resolver().resolve(TEMPLATES, _request(fhirServer=None, prefetch={"patient": PATIENT}))


async def test_an_http_fhir_server_is_refused_unless_the_setting_allows_it() -> None:
    ehr = FakeEhr({"/fhir/Patient/pat-77": httpx.Response(200, json=PATIENT)})
    request = _request(fhirServer="http://ehr.example/fhir")
    with pytest.raises(PrefetchRequestError, match="https"):
        await ehr.resolver().resolve(TEMPLATES, request)
    assert ehr.requests == []
    resolved = await ehr.resolver(allow_http=True).resolve(TEMPLATES, request)
    assert resolved.values == {"patient": PATIENT}


@pytest.mark.parametrize(
    "server",
    [
        "ftp://ehr.example/fhir",
        "ehr.example/fhir",
        "https://user:pw@ehr.example/fhir",
        "https://ehr.example/fhir?x=1",
        42,
    ],
)
async def test_a_fhir_server_that_is_not_a_plain_https_base_url_is_a_bad_request(server: object) -> None:
    with pytest.raises(PrefetchRequestError):
        await FakeEhr().resolver().resolve(TEMPLATES, _request(fhirServer=server))


async def test_a_fhir_server_outside_the_configured_origins_is_a_bad_request() -> None:
    ehr = FakeEhr({"/fhir/Patient/pat-77": httpx.Response(200, json=PATIENT)})
    allowed = ehr.resolver(allowed_origins=["https://EHR.example:443"])
    assert (await allowed.resolve(TEMPLATES, _request())).values == {"patient": PATIENT}
    with pytest.raises(PrefetchRequestError, match="not a FHIR server this service is configured to use"):
        await allowed.resolve(TEMPLATES, _request(fhirServer="https://attacker.example/fhir"))


@pytest.mark.parametrize(
    "authorization",
    [
        {"token_type": "Bearer"},
        {"access_token": " ", "token_type": "Bearer"},
        {"access_token": TOKEN, "token_type": "MAC"},
        "a-token",
    ],
)
async def test_a_malformed_fhir_authorization_is_a_bad_request(authorization: object) -> None:
    with pytest.raises(PrefetchRequestError, match="fhirAuthorization"):
        await FakeEhr().resolver().resolve(TEMPLATES, _request(fhirAuthorization=authorization))


async def test_a_prefetch_that_is_not_an_object_is_a_bad_request() -> None:
    with pytest.raises(PrefetchRequestError, match="prefetch must be a JSON object"):
        await FakeEhr().resolver().resolve(TEMPLATES, _request(prefetch=[PATIENT]))


async def test_keys_the_service_did_not_ask_for_are_left_out() -> None:
    resolved = (
        await FakeEhr()
        .resolver()
        .resolve(TEMPLATES, _request(prefetch={"patient": PATIENT, "someone-else": {"resourceType": "Patient"}}))
    )
    assert resolved.values == {"patient": PATIENT}
    assert [(i.key, i.reason) for i in resolved.issues] == [("someone-else", IssueReason.UNREQUESTED_KEY)]


async def test_the_spec_request_resolves_and_a_role_token_for_a_practitioner_is_no_data(shared_data: Path) -> None:
    examples = shared_data / "cds-hooks-examples"
    request = json.loads((examples / "spec2.0.1_request-patient-view-with-prefetch.json").read_text())
    templates = json.loads((examples / "spec2.0.1_discovery-prefetch-templates.json").read_text())["prefetch"]
    templates = {key: t.replace("sort:desc=date", "_sort=-date") for key, t in templates.items()}
    searchset = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    patient = {"resourceType": "Patient", "id": "1288992"}
    ehr = FakeEhr(
        {
            "/Patient/1288992": httpx.Response(200, json=patient),
            "/Observation?patient=1288992&code=4548-4&_count=1&_sort=-date": httpx.Response(200, json=searchset),
            "/Condition?patient=1288992&code=44054006&category=problem-list-item&status=active": httpx.Response(
                200, json=searchset
            ),
        }
    )
    resolved = await ehr.resolver(allow_http=True).resolve(templates, request)
    assert resolved.values == {
        "patient": patient,
        "hemoglobin-a1c": searchset,
        "diabetes-type2": searchset,
        "user": None,
    }
    assert sorted(resolved.fetched) == ["diabetes-type2", "hemoglobin-a1c", "patient"]
    assert {(i.key, i.reason) for i in resolved.issues} == {
        ("user", IssueReason.TEMPLATE_UNFULFILLABLE),
        ("patientToGreet", IssueReason.UNREQUESTED_KEY),
    }
    assert len(ehr.requests) == 3
    assert {r.headers["authorization"] for r in ehr.requests} == {"Bearer some-opaque-fhir-access-token"}


async def test_a_read_of_a_resource_the_server_does_not_have_is_no_data() -> None:
    resolved = await FakeEhr().resolver().resolve(TEMPLATES, _request())
    assert resolved.values == {"patient": None}
    assert [i.reason for i in resolved.issues] == [IssueReason.NOT_FOUND]


async def test_a_search_the_server_does_not_know_is_unavailable() -> None:
    with pytest.raises(PrefetchUnavailable) as raised:
        await FakeEhr().resolver().resolve({"v": "Observation?subject={{context.patientId}}"}, _request())
    assert raised.value.reason is UnavailableReason.SERVER_ERROR


async def test_an_operation_outcome_answered_by_the_server_is_no_data() -> None:
    ehr = FakeEhr({"/fhir/Patient/pat-77": httpx.Response(200, json={"resourceType": "OperationOutcome"})})
    resolved = await ehr.resolver().resolve(TEMPLATES, _request())
    assert resolved.values == {"patient": None}
    assert [i.reason for i in resolved.issues] == [IssueReason.OPERATION_OUTCOME]


async def test_a_redirect_is_not_followed() -> None:
    moved = httpx.Response(302, headers={"Location": "https://elsewhere.example/Patient/pat-77"})
    ehr = FakeEhr({"/fhir/Patient/pat-77": moved})
    with pytest.raises(PrefetchUnavailable) as raised:
        await ehr.resolver().resolve(TEMPLATES, _request())
    assert raised.value.reason is UnavailableReason.SERVER_ERROR
    assert [r.url.host for r in ehr.requests] == ["ehr.example"]


async def test_a_response_larger_than_the_limit_is_refused() -> None:
    big = {**PATIENT, "text": {"div": "x" * 5000}}
    ehr = FakeEhr({"/fhir/Patient/pat-77": httpx.Response(200, json=big)})
    with pytest.raises(PrefetchUnavailable) as raised:
        await ehr.resolver(max_response_bytes=1000).resolve(TEMPLATES, _request())
    assert raised.value.reason is UnavailableReason.INVALID_RESPONSE


async def test_a_next_link_to_another_origin_is_not_followed() -> None:
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": PATIENT}],
        "link": [{"relation": "next", "url": "https://collector.example/fhir/Patient?page=2"}],
    }
    ehr = FakeEhr({"/fhir/Patient?_id=pat-77": httpx.Response(200, json=page)})
    resolved = await ehr.resolver().resolve({"p": "Patient?_id={{context.patientId}}"}, _request())
    assert resolved.values["p"] == {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": PATIENT}]}
    assert [i.reason for i in resolved.issues] == [IssueReason.FOREIGN_NEXT_LINK]
    assert len(ehr.requests) == 1


async def test_nothing_logged_carries_the_patient_id_the_token_or_the_url() -> None:
    ehr = FakeEhr(
        {
            "/fhir/Patient/pat-77": httpx.Response(200, json=PATIENT),
            "/fhir/Observation?subject=pat-77": httpx.Response(500),
        }
    )
    templates = {**TEMPLATES, "vitals": "Observation?subject={{context.patientId}}"}
    with capture_logs() as logs, pytest.raises(PrefetchUnavailable):
        await ehr.resolver().resolve(templates, _request())
    assert {entry["event"] for entry in logs} == {"prefetch.fetched", "prefetch.fetch_failed", "prefetch.unavailable"}
    written = json.dumps(logs, default=str)
    assert "pat-77" not in written
    assert TOKEN not in written
    assert "ehr.example" not in written
