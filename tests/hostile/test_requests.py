"""Hostile request bodies and addresses: each is refused with the status a client can act on, never a 500, and
leaves no partial record behind in any table."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from tests.hostile.conftest import MAX_BODY_BYTES, Service, auth

HOOK_PATH = "/cds-services/pv-test"
FEEDBACK_PATH = "/cds-services/pv-test/feedback"
JSON = {"Content-Type": "application/json"}


def _request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": "pt-hostile"},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "pt-hostile"}},
    }
    body.update(overrides)
    return body


def _post(service: Service, path: str, content: bytes | Iterator[bytes], headers: dict[str, str]) -> Any:
    # The audience is compared with the path as the server decodes it, so the token names the decoded path.
    return service.client.post(path, content=content, headers={**auth(unquote(path)), **headers})


def _refused_without_trace(service: Service, send: Any, status: int) -> None:
    before = service.row_counts()
    response = send()
    assert response.status_code == status, response.text
    assert response.json()["error"]["status"] == status
    assert service.row_counts() == before


def test_a_well_formed_request_is_answered_and_recorded(service: Service) -> None:
    """The baseline the refusals below are measured against: the same service does record a good call."""
    before = service.row_counts()

    response = _post(service, HOOK_PATH, json.dumps(_request()).encode(), JSON)

    assert response.status_code == 200, response.text
    after = service.row_counts()
    assert after["hook_calls"] == before["hook_calls"] + 1
    assert after["audit_log"] > before["audit_log"]


@pytest.mark.parametrize("path", [HOOK_PATH, FEEDBACK_PATH])
def test_a_body_over_the_size_limit_is_413_when_its_length_is_declared(service: Service, path: str) -> None:
    padding = "x" * (MAX_BODY_BYTES + 1)
    body = json.dumps(_request(padding=padding)).encode()

    _refused_without_trace(service, lambda: _post(service, path, body, JSON), 413)


def test_a_streamed_body_over_the_size_limit_is_413_without_a_declared_length(service: Service) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"hook": "patient-view", "padding": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    _refused_without_trace(service, lambda: _post(service, HOOK_PATH, chunks(), JSON), 413)


@pytest.mark.parametrize("path", [HOOK_PATH, FEEDBACK_PATH])
@pytest.mark.parametrize("opening", ["[", '{"a":'], ids=["arrays", "objects"])
def test_json_nested_ten_thousand_levels_deep_is_400(service: Service, path: str, opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    nested = opening * 10_000 + "1" + closing * 10_000
    body = f'{{"hook": "patient-view", "context": {nested}}}'.encode()

    _refused_without_trace(service, lambda: _post(service, path, body, JSON), 400)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
@pytest.mark.parametrize("path", [HOOK_PATH, FEEDBACK_PATH])
def test_a_body_that_is_not_declared_json_is_415_even_when_it_parses(
    service: Service, path: str, content_type: str
) -> None:
    """A text/plain POST is one a browser sends cross-origin without a CORS preflight: refuse it outright."""
    body = json.dumps(_request()).encode()

    _refused_without_trace(service, lambda: _post(service, path, body, {"Content-Type": content_type}), 415)


def test_a_form_encoded_body_is_415(service: Service) -> None:
    def send() -> Any:
        return service.client.post(HOOK_PATH, data={"hook": "patient-view"}, headers=auth(HOOK_PATH))

    _refused_without_trace(service, send, 415)


def test_a_body_without_a_content_type_is_415(service: Service) -> None:
    body = json.dumps(_request()).encode()

    _refused_without_trace(service, lambda: _post(service, HOOK_PATH, body, {}), 415)


def test_a_json_content_type_with_parameters_or_in_capitals_is_accepted(service: Service) -> None:
    body = json.dumps(_request()).encode()

    response = _post(service, HOOK_PATH, body, {"Content-Type": "Application/JSON; charset=UTF-8"})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"hook": "patient-\xff\xfeview", "hookInstance": "x", "context": {}}',
        b'{"hook": "patient-view", "hookInstance": "\xed\xa0\x80", "context": {}}',
        b"\xef\xbb\xbf" + json.dumps(_request()).encode(),
    ],
    ids=["invalid-bytes", "encoded-surrogate", "byte-order-mark"],
)
def test_a_body_that_is_not_valid_utf8_json_is_400(service: Service, body: bytes) -> None:
    _refused_without_trace(service, lambda: _post(service, HOOK_PATH, body, JSON), 400)


@pytest.mark.parametrize("number", ["1e309", "-1e309", "1" + "0" * 400], ids=["1e309", "-1e309", "10**400"])
@pytest.mark.parametrize("service_id", ["pv-test", "deterioration-news2"])
def test_a_number_beyond_double_range_in_prefetch_is_400(service: Service, number: str, service_id: str) -> None:
    path = f"/cds-services/{service_id}"
    body = json.dumps(_request(prefetch={"patient": {"resourceType": "Patient", "id": "pt-hostile"}}))
    body = body.replace('"id": "pt-hostile"}}', f'"id": "pt-hostile", "extension": [{{"valueDecimal": {number}}}]}}}}')
    assert number in body

    _refused_without_trace(service, lambda: _post(service, path, body.encode(), JSON), 400)


@pytest.mark.parametrize("value", [1.7976931348623157e308, -1.7976931348623157e308, 2**63, 5e-324])
def test_an_extreme_but_finite_vital_sign_is_answered_never_a_500(service: Service, value: float) -> None:
    """Doubles at the edge of their range reach unit conversion and scoring: they must be judged implausible, not
    overflow into an infinity that the audit log (rightly) refuses to store."""
    path = "/cds-services/deterioration-news2"
    observation = {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/pt-hostile"},
        "effectiveDateTime": "2026-11-25T08:00:00Z",
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    vitals = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": observation}]}
    body = _request(prefetch={"patient": {"resourceType": "Patient", "id": "pt-hostile"}, "vitals": vitals})

    response = _post(service, path, json.dumps(body).encode(), JSON)

    assert response.status_code == 200, response.text


def test_a_hook_the_service_does_not_answer_is_400(service: Service) -> None:
    body = json.dumps(_request(hook="order-sign")).encode()

    _refused_without_trace(service, lambda: _post(service, HOOK_PATH, body, JSON), 400)


@pytest.mark.parametrize("hook", ["no-such-hook", "", "patient-view\x00", "p" * 10_000])
def test_a_hook_name_no_specification_defines_is_400(service: Service, hook: str) -> None:
    body = json.dumps(_request(hook=hook)).encode()

    _refused_without_trace(service, lambda: _post(service, HOOK_PATH, body, JSON), 400)


@pytest.mark.parametrize("service_id", ["no-such-service", "pv-test%00", "%C0%AE", "x" * 2000])
@pytest.mark.parametrize("suffix", ["", "/feedback"])
def test_an_unknown_service_is_404(service: Service, service_id: str, suffix: str) -> None:
    path = f"/cds-services/{service_id}{suffix}"
    body = json.dumps(_request()).encode()

    _refused_without_trace(service, lambda: _post(service, path, body, JSON), 404)


@pytest.mark.parametrize("path", ["/cds-services/..%2F..%2Fetc%2Fpasswd", "/cds-services/pv-test/%2E%2E/feedback"])
def test_an_encoded_path_traversal_matches_no_route_and_is_404(service: Service, path: str) -> None:
    before = service.row_counts()

    response = _post(service, path, json.dumps(_request()).encode(), JSON)

    assert response.status_code == 404
    assert service.row_counts() == before


def test_an_oversized_body_to_an_unknown_service_is_refused_before_it_is_read(service: Service) -> None:
    path = "/cds-services/no-such-service"
    body = b"{" + b" " * (MAX_BODY_BYTES * 2) + b"}"

    _refused_without_trace(service, lambda: _post(service, path, body, JSON), 413)


STAFF_PATHS = [
    "/policies/validate",
    "/silences",
    "/cards/6f0c2b1e-0000-4000-8000-00000000c0de/actions",
    "/services/pv-test/candidates",
]


@pytest.mark.parametrize("path", STAFF_PATHS)
def test_an_oversized_body_to_any_staff_endpoint_is_413_before_it_is_read_whole(service: Service, path: str) -> None:
    body = json.dumps({"padding": "x" * (MAX_BODY_BYTES + 1)}).encode()

    _refused_without_trace(service, lambda: service.client.post(path, content=body, headers=JSON), 413)


@pytest.mark.parametrize("path", STAFF_PATHS)
def test_a_streamed_oversized_body_to_any_staff_endpoint_is_413(service: Service, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"padding": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    _refused_without_trace(service, lambda: service.client.post(path, content=chunks(), headers=JSON), 413)


def test_a_hook_instance_longer_than_any_stored_id_is_400_and_records_nothing(service: Service) -> None:
    body = json.dumps(_request(hookInstance="h" * 129)).encode()

    _refused_without_trace(service, lambda: _post(service, HOOK_PATH, body, JSON), 400)
