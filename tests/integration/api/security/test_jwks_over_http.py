"""Keys fetched over real HTTP from a JWKS server on 127.0.0.1: allow-listed jku only, bounded, cached as told."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api.security.errors import EhrAuthenticationError, RejectReason
from api.security.jwks_http import MAX_JWKS_BYTES, HttpJwksFetcher
from api.security.replay import MemoryReplayGuard
from api.security.verifier import EhrTokenVerifier
from tests.unit.api.security.tokens import AUDIENCE, ISS, FakeClock, claims, ec_key, issuer, jwks, mint, rsa_key
from tests.unit.api.security.tokens import security_settings as make_settings

_SLOW_S = 3.0


class _JwksHandler(BaseHTTPRequestHandler):
    # Set per server: the JWKS served, and the paths requested so far.
    document: dict[str, Any]
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path == "/jwks.json":
            self._send(200, json.dumps(self.document).encode(), {"Cache-Control": "public, max-age=120"})
        elif self.path == "/moved":
            self._send(302, b"", {"Location": "/jwks.json"})
        elif self.path == "/huge":
            self._send(200, b'{"keys": [], "padding": "' + b"x" * MAX_JWKS_BYTES + b'"}', {})
        elif self.path == "/not-json":
            self._send(200, b"<html>keys</html>", {})
        elif self.path == "/slow":
            time.sleep(_SLOW_S)
            self._send(200, json.dumps(self.document).encode(), {})
        else:
            self._send(404, b"", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Our client hangs up on purpose (oversized or slow answers); the broken pipe that follows is expected.
        pass


class JwksServer:
    def __init__(self, document: dict[str, Any]) -> None:
        self.requests: list[str] = []
        handler = type("Handler", (_JwksHandler,), {"document": document, "requests": self.requests})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer(jwks(ec_key(), rsa_key()))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fetcher() -> Iterator[HttpJwksFetcher]:
    real = HttpJwksFetcher(timeout_s=0.5)
    try:
        yield real
    finally:
        real.close()


def _verifier(server: JwksServer, fetcher: HttpJwksFetcher, clock: FakeClock, *paths: str) -> EhrTokenVerifier:
    settings = make_settings(issuer(jwks_url=None, allowed_jku=tuple(server.url(path) for path in paths)))
    return EhrTokenVerifier(settings, replay_guard=MemoryReplayGuard(), fetcher=fetcher, clock=clock, monotonic=clock)


def _refusal(verifier: EhrTokenVerifier, token: str) -> RejectReason:
    with pytest.raises(EhrAuthenticationError) as refused:
        verifier.verify(token, audience=AUDIENCE)
    return refused.value.reason


def test_a_jku_on_the_allow_list_is_fetched_and_then_served_from_the_cache(
    jwks_server: JwksServer, fetcher: HttpJwksFetcher
) -> None:
    clock = FakeClock()
    verifier = _verifier(jwks_server, fetcher, clock, "/jwks.json")
    jku = jwks_server.url("/jwks.json")

    assert verifier.verify(mint(ec_key(), jku=jku), audience=AUDIENCE).iss == ISS
    assert verifier.verify(mint(rsa_key(), jku=jku), audience=AUDIENCE).iss == ISS
    assert jwks_server.requests == ["/jwks.json"]


def test_the_servers_max_age_decides_when_keys_are_fetched_again(
    jwks_server: JwksServer, fetcher: HttpJwksFetcher
) -> None:
    clock = FakeClock()
    verifier = _verifier(jwks_server, fetcher, clock, "/jwks.json")
    jku = jwks_server.url("/jwks.json")
    verifier.verify(mint(ec_key(), jku=jku), audience=AUDIENCE)

    clock.now += 121
    verifier.verify(mint(ec_key(), claims(iat=clock.now, exp=clock.now + 60), jku=jku), audience=AUDIENCE)

    assert jwks_server.requests == ["/jwks.json", "/jwks.json"]


def test_a_jku_off_the_allow_list_is_never_requested(jwks_server: JwksServer, fetcher: HttpJwksFetcher) -> None:
    verifier = _verifier(jwks_server, fetcher, FakeClock(), "/jwks.json")

    assert _refusal(verifier, mint(ec_key(), jku=jwks_server.url("/other.json"))) is RejectReason.JKU_NOT_ALLOWED
    assert jwks_server.requests == []


@pytest.mark.parametrize("path", ["/moved", "/huge", "/not-json", "/missing"])
def test_a_jwks_that_redirects_or_is_not_a_small_json_document_yields_no_keys(
    path: str, jwks_server: JwksServer, fetcher: HttpJwksFetcher
) -> None:
    verifier = _verifier(jwks_server, fetcher, FakeClock(), path)

    assert _refusal(verifier, mint(ec_key(), jku=jwks_server.url(path))) is RejectReason.UNKNOWN_KID
    # Not even a redirect is followed: the allow-list names the one URL we fetch.
    assert jwks_server.requests == [path]


def test_a_slow_jwks_server_is_given_up_on_within_the_timeout(
    jwks_server: JwksServer, fetcher: HttpJwksFetcher
) -> None:
    verifier = _verifier(jwks_server, fetcher, FakeClock(), "/slow")
    started = time.monotonic()

    assert _refusal(verifier, mint(ec_key(), jku=jwks_server.url("/slow"))) is RejectReason.UNKNOWN_KID
    assert time.monotonic() - started < _SLOW_S - 1
