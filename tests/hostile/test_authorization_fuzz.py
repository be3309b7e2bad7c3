"""Random and mutated Authorization headers over HTTP: never accepted, always the same 401, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import Service, claims_for
from tests.strategies import byte_mutations
from tests.unit.api.security.tokens import MALFORMED_TOKENS, ec_key, mint, rsa_key

PATHS = ("/cds-services", "/cds-services/pv-test", "/cds-services/pv-test/feedback")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Characters an HTTP client can put in a header value (no CR, LF or NUL), Latin-1 as HTTP/1.1 carries it.
_header_text = st.text(st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="\r\n"), max_size=200)


def _send(service: Service, path: str, authorization: str) -> Any:
    # As raw Latin-1 bytes: httpx would refuse to encode a str header beyond ASCII, and a hostile client sends any.
    headers = {"Authorization": authorization.encode("latin-1")}
    if path == "/cds-services":
        return service.client.get(path, headers=headers)
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": "pt-fuzz"},
        "feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}],
    }
    return service.client.post(path, json=body, headers=headers)


def _assert_refused(service: Service, path: str, authorization: str) -> None:
    before = service.row_counts()
    response = _send(service, path, authorization)
    assert response.status_code == 401, (path, response.status_code)
    assert response.json() == {"error": {"status": 401, "message": "authentication required"}}
    assert service.row_counts() == before


@FUZZ
@given(path=st.sampled_from(PATHS), authorization=_header_text)
def test_a_random_authorization_header_is_401(service: Service, path: str, authorization: str) -> None:
    _assert_refused(service, path, authorization)


@FUZZ
@given(path=st.sampled_from(PATHS), scheme=st.sampled_from(["Bearer ", "bearer ", "BEARER  "]), data=st.data())
def test_a_mutated_valid_token_is_401(service: Service, path: str, scheme: str, data: st.DataObject) -> None:
    """A token valid for this very call, changed by a few bytes anywhere, is never accepted."""
    key = data.draw(st.sampled_from([ec_key(), rsa_key()]))
    token = mint(key, claims_for(path)).encode("ascii")
    mutated = data.draw(byte_mutations(token)).decode("latin-1")
    if "\r" in mutated or "\n" in mutated or "\x00" in mutated:
        mutated = mutated.replace("\r", "!").replace("\n", "!").replace("\x00", "!")
    # Surrounding whitespace is not part of the token (RFC 7235), so a mutation that only adds some is no change.
    if mutated.strip() == token.decode():
        mutated += "A"
    _assert_refused(service, path, scheme + mutated)


@FUZZ
@given(path=st.sampled_from(PATHS), name=st.sampled_from(sorted(MALFORMED_TOKENS)), scheme=_header_text)
def test_a_malformed_token_under_any_scheme_is_401(service: Service, path: str, name: str, scheme: str) -> None:
    value = f"{scheme} {MALFORMED_TOKENS[name]}".replace("\x00", "!")
    _assert_refused(service, path, value)
