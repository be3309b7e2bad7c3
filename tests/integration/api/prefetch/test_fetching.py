"""Prefetch fetched over real HTTP from the local FHIR server stand-in: token, query, paging, limits and failures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.prefetch import (
    IssueReason,
    PrefetchResolver,
    PrefetchUnavailable,
    ResolvedPrefetch,
    UnavailableReason,
    make_fhir_client,
)
from tests.fhir_server import FhirServerStandIn

pytestmark = pytest.mark.anyio

TOKEN = "stand-in-token-7"
HBA1C = "Observation?patient={{context.patientId}}&code=4548-4&_count=1&_sort=-date"
VITALS = "Observation?subject={{context.patientId}}&category=vital-signs&_count=3"


def _observation(number: int, code: str = "8867-4", patient: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{number}",
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
    }


def _request(server: FhirServerStandIn | str, **members: Any) -> dict[str, Any]:
    base = server if isinstance(server, str) else server.base_url
    return {
        "hook": "patient-view",
        "hookInstance": "0e2b1a8c-55f4-4d0c-9a64-9a8c1b7f3f10",
        "fhirServer": base,
        "fhirAuthorization": {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "x",
            "subject": "svc",
        },
        "context": {"userId": "Practitioner/doc-1", "patientId": "p1"},
        **members,
    }


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_fhir_client(connect_timeout=1.0, read_timeout=5.0) as shared:
        yield shared


def _resolver(client: httpx.AsyncClient, **options: Any) -> PrefetchResolver:
    settings: dict[str, Any] = {"allow_http": True, "salt": "it-salt", "timeout": 3.0, **options}
    return PrefetchResolver(client, **settings)


def _entry_ids(resolved: ResolvedPrefetch, key: str) -> list[str]:
    bundle = resolved.values[key]
    assert isinstance(bundle, dict)
    assert "link" not in bundle  # merged: no next link is handed on
    return [entry["resource"]["id"] for entry in bundle["entry"]]


async def test_a_missing_key_is_fetched_with_the_bearer_token_and_the_rendered_query(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.require_token(TOKEN)
    fhir_server.add(_observation(1, code="4548-4"), _observation(2), _observation(3, code="4548-4", patient="p2"))
    resolved = await _resolver(client).resolve({"hemoglobin-a1c": HBA1C}, _request(fhir_server))
    assert _entry_ids(resolved, "hemoglobin-a1c") == ["obs-1"]
    [seen] = fhir_server.requests
    assert seen.authorization == f"Bearer {TOKEN}"
    assert (seen.path, seen.query) == (
        "Observation",
        (("patient", "p1"), ("code", "4548-4"), ("_count", "1"), ("_sort", "-date")),
    )


async def test_a_patient_id_with_query_characters_reaches_the_server_as_one_value(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    request = _request(fhir_server, context={"userId": "Practitioner/doc-1", "patientId": "p1&code=x,y"})
    await _resolver(client).resolve({"v": VITALS}, request)
    [seen] = fhir_server.requests
    assert seen.params("subject") == ["p1&code=x,y"]
    assert seen.params("code") == []


async def test_pages_are_followed_and_merged_into_one_searchset(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.add(*(_observation(n) for n in range(7)))
    resolved = await _resolver(client).resolve({"vitals": VITALS}, _request(fhir_server))
    assert _entry_ids(resolved, "vitals") == [f"obs-{n}" for n in range(7)]
    assert resolved.issues == []
    assert len(fhir_server.requests) == 3
    assert {r.authorization for r in fhir_server.requests} == {f"Bearer {TOKEN}"}


async def test_paging_stops_at_the_page_limit_and_says_so(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.add(*(_observation(n) for n in range(10)))
    resolved = await _resolver(client, max_pages=2).resolve({"vitals": VITALS}, _request(fhir_server))
    assert _entry_ids(resolved, "vitals") == [f"obs-{n}" for n in range(6)]
    assert [i.reason for i in resolved.issues] == [IssueReason.PAGE_LIMIT]
    assert len(fhir_server.requests) == 2


async def test_paging_stops_at_the_entry_limit_and_cuts_the_last_page(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.add(*(_observation(n) for n in range(10)))
    resolved = await _resolver(client, max_entries=4).resolve({"vitals": VITALS}, _request(fhir_server))
    assert _entry_ids(resolved, "vitals") == [f"obs-{n}" for n in range(4)]
    assert [i.reason for i in resolved.issues] == [IssueReason.ENTRY_LIMIT]
    assert len(fhir_server.requests) == 2


async def test_a_next_link_to_another_origin_is_not_followed(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    elsewhere = FhirServerStandIn()
    try:
        fhir_server.next_links_to(elsewhere.origin)
        fhir_server.add(*(_observation(n) for n in range(5)))
        resolved = await _resolver(client).resolve({"vitals": VITALS}, _request(fhir_server))
    finally:
        elsewhere.stop()
    assert _entry_ids(resolved, "vitals") == ["obs-0", "obs-1", "obs-2"]
    assert [i.reason for i in resolved.issues] == [IssueReason.FOREIGN_NEXT_LINK]
    assert elsewhere.requests == []


async def test_missing_keys_are_fetched_concurrently(fhir_server: FhirServerStandIn, client: httpx.AsyncClient) -> None:
    fhir_server.delay(1.0)
    templates = {f"k{n}": f"Observation?subject={{{{context.patientId}}}}&code={n}" for n in range(4)}
    started = time.monotonic()
    resolved = await _resolver(client, timeout=3.0).resolve(templates, _request(fhir_server))
    # One after the other the four would need 4 s and miss the 3 s deadline.
    assert time.monotonic() - started < 3.0
    assert sorted(resolved.fetched) == ["k0", "k1", "k2", "k3"]


async def test_a_slow_fhir_server_is_a_precondition_failure_within_the_deadline(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.delay(10)
    started = time.monotonic()
    with pytest.raises(PrefetchUnavailable) as raised:
        await _resolver(client, timeout=0.5).resolve({"vitals": VITALS}, _request(fhir_server))
    # The server would answer after 10 s; the resolver gives up at its 0.5 s deadline (slack for a loaded machine).
    assert time.monotonic() - started < 2.5
    assert (raised.value.keys, raised.value.reason) == (("vitals",), UnavailableReason.TIMEOUT)


async def test_the_clients_read_timeout_bounds_one_request_within_a_longer_deadline(
    fhir_server: FhirServerStandIn,
) -> None:
    fhir_server.delay(10)
    started = time.monotonic()
    async with make_fhir_client(connect_timeout=1.0, read_timeout=0.3) as impatient:
        with pytest.raises(PrefetchUnavailable) as raised:
            await _resolver(impatient, timeout=5.0).resolve({"vitals": VITALS}, _request(fhir_server))
    assert time.monotonic() - started < 2.5
    assert raised.value.reason is UnavailableReason.TIMEOUT


async def test_keys_that_arrive_in_time_are_kept_when_an_optional_one_is_late(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.add({"resourceType": "Patient", "id": "p1"})
    fhir_server.delay(10, path="Observation")
    resolved = await _resolver(client, timeout=0.5).resolve(
        {"patient": "Patient/{{context.patientId}}", "vitals": VITALS}, _request(fhir_server), optional={"vitals"}
    )
    assert resolved.values == {"patient": {"resourceType": "Patient", "id": "p1"}, "vitals": None}
    assert [(i.key, i.reason, i.detail) for i in resolved.issues] == [
        ("vitals", IssueReason.UNAVAILABLE, "fhir-server-timeout")
    ]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (500, UnavailableReason.SERVER_ERROR),
        (503, UnavailableReason.SERVER_ERROR),
        (401, UnavailableReason.DENIED),
        (403, UnavailableReason.DENIED),
    ],
)
async def test_a_failing_fhir_server_is_a_precondition_failure(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient, status: int, reason: UnavailableReason
) -> None:
    fhir_server.fail(status)
    with pytest.raises(PrefetchUnavailable) as raised:
        await _resolver(client).resolve({"vitals": VITALS}, _request(fhir_server))
    assert (raised.value.keys, raised.value.reason) == (("vitals",), reason)


async def test_a_wrong_token_is_denied_by_the_server_and_a_precondition_failure(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.require_token("the-right-token")
    with pytest.raises(PrefetchUnavailable) as raised:
        await _resolver(client).resolve({"vitals": VITALS}, _request(fhir_server))
    assert raised.value.reason is UnavailableReason.DENIED


async def test_invalid_json_from_the_server_is_a_precondition_failure(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.invalid_json()
    with pytest.raises(PrefetchUnavailable) as raised:
        await _resolver(client).resolve({"vitals": VITALS}, _request(fhir_server))
    assert raised.value.reason is UnavailableReason.INVALID_RESPONSE


async def test_a_failure_on_a_later_page_makes_the_whole_key_unavailable(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.add(*(_observation(n) for n in range(5)))
    fhir_server.fail(500, after=1)
    with pytest.raises(PrefetchUnavailable) as raised:
        await _resolver(client).resolve({"vitals": VITALS}, _request(fhir_server))
    assert raised.value.reason is UnavailableReason.SERVER_ERROR
    assert len(fhir_server.requests) == 2


async def test_an_unreachable_fhir_server_is_a_precondition_failure(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.stop()
    with pytest.raises(PrefetchUnavailable) as raised:
        await _resolver(client).resolve({"vitals": VITALS}, _request(fhir_server))
    assert raised.value.reason is UnavailableReason.UNREACHABLE


async def test_keys_failing_for_different_reasons_are_reported_together(
    fhir_server: FhirServerStandIn, client: httpx.AsyncClient
) -> None:
    fhir_server.fail(500, path="Observation")
    fhir_server.invalid_json(path="Condition")
    templates = {"vitals": VITALS, "problems": "Condition?patient={{context.patientId}}"}
    with pytest.raises(PrefetchUnavailable) as raised:
        await _resolver(client).resolve(templates, _request(fhir_server))
    assert (raised.value.keys, raised.value.reason) == (("problems", "vitals"), UnavailableReason.MIXED)
    assert {(i.key, i.detail) for i in raised.value.issues} == {
        ("vitals", "fhir-server-error"),
        ("problems", "invalid-response"),
    }
