"""A local FHIR server stand-in for tests: real HTTP on 127.0.0.1, reads and paged searches over the resources a test
adds, a record of every request, and faults on demand (slow, failing, invalid JSON, down).

Use the `fhir_server` fixture: `pytest_plugins = ["tests.fhir_server"]` in the top-level conftest, or
`from tests.fhir_server import fhir_server` in a conftest.py near the tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

BASE_PATH = "/fhir"
PAGE_OFFSET = "_getpagesoffset"  # the server's own paging parameter, as HAPI names it


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. `path` is relative to the FHIR base, e.g. "Patient/123" or "Observation"."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    raw_query: str
    headers: Mapping[str, str]

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def params(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]


@dataclass
class _Fault:
    kind: str  # "status", "delay" or "invalid-json"
    after: int  # the fault spares this many matching requests, then applies to every later one
    path: str | None  # only requests under this relative path, e.g. "Observation"; None: all
    status: int = 500
    seconds: float = 0.0
    seen: int = 0

    def applies(self, request: RecordedRequest) -> bool:
        if self.path is not None and request.path != self.path and not request.path.startswith(self.path + "/"):
            return False
        self.seen += 1
        return self.seen > self.after


class FhirServerStandIn:
    """Starts serving on construction; `stop()` takes it down (later requests are refused by the OS)."""

    def __init__(self, *, page_size: int = 50, port: int = 0) -> None:
        """`port` 0 takes a free one; a given port lets a stopped stand-in come back where clients expect it."""
        self.page_size = page_size
        self._resources: list[dict[str, Any]] = []
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._next_origin: str | None = None
        self._required_token: str | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(self, port)
        self.origin = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.base_url = self.origin + BASE_PATH
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fhir-stand-in", daemon=True
        )
        self._thread.start()

    # What a test sets up.

    def add(self, *resources: dict[str, Any]) -> None:
        with self._lock:
            self._resources.extend(resources)

    # Faults spare the first `after` requests (under `path`, if given) and apply to every later one.

    def fail(self, status: int = 500, *, after: int = 0, path: str | None = None) -> None:
        """Answer `status` with an OperationOutcome."""
        self._add_fault(_Fault("status", after, path, status=status))

    def delay(self, seconds: float, *, after: int = 0, path: str | None = None) -> None:
        """Answer only after `seconds` (or never, if the server is stopped meanwhile)."""
        self._add_fault(_Fault("delay", after, path, seconds=seconds))

    def invalid_json(self, *, after: int = 0, path: str | None = None) -> None:
        """Answer 200 with a body that is not JSON."""
        self._add_fault(_Fault("invalid-json", after, path))

    def clear_faults(self) -> None:
        """Serve normally again (requests already waiting out a delay still wait)."""
        with self._lock:
            self._faults.clear()

    def next_links_to(self, origin: str) -> None:
        """Searchset next links point at another origin (the stand-in still serves them if asked)."""
        self._next_origin = origin

    def require_token(self, token: str) -> None:
        """Answer 401 unless the request carries `Authorization: Bearer <token>`."""
        self._required_token = token

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()  # wakes delayed handlers, which then answer nothing
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # What the handler calls.

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _record(self, request: RecordedRequest) -> list[_Fault]:
        with self._lock:
            self._requests.append(request)
            return [fault for fault in self._faults if fault.applies(request)]

    def _answer(self, request: RecordedRequest) -> tuple[int, bytes]:
        faults = self._record(request)
        for fault in faults:
            if fault.kind == "delay" and self._stopping.wait(fault.seconds):
                return 503, b""
        for fault in faults:
            if fault.kind == "status":
                return fault.status, _outcome("error", "exception", "configured failure")
            if fault.kind == "invalid-json":
                return 200, b'{"resourceType": "Bundle", "entry": [ '
        if self._required_token is not None and request.authorization != f"Bearer {self._required_token}":
            return 401, _outcome("error", "login", "missing or wrong bearer token")
        if request.method != "GET":
            return 405, _outcome("error", "not-supported", "only GET is served")
        segments = request.path.split("/") if request.path else []
        if len(segments) == 2:
            return self._read(*segments)
        if len(segments) == 1:
            return 200, json.dumps(self._search(segments[0], request)).encode()
        return 404, _outcome("error", "not-found", "unknown path")

    def _read(self, resource_type: str, resource_id: str) -> tuple[int, bytes]:
        with self._lock:
            for resource in self._resources:
                if resource.get("resourceType") == resource_type and resource.get("id") == resource_id:
                    return 200, json.dumps(resource).encode()
        return 404, _outcome("error", "not-found", "no such resource")

    def _search(self, resource_type: str, request: RecordedRequest) -> dict[str, Any]:
        # Only the parameters tests need are honoured: _id, patient/subject, code, _count. Order is insertion order.
        with self._lock:
            matches = [r for r in self._resources if r.get("resourceType") == resource_type and _matches(r, request)]
        count = int((request.params("_count") or [str(self.page_size)])[0])
        offset = int((request.params(PAGE_OFFSET) or ["0"])[0])
        page = matches[offset : offset + count]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": [{"relation": "self", "url": f"{self.base_url}/{resource_type}?{request.raw_query}"}],
            "entry": [
                {
                    "fullUrl": f"{self.base_url}/{resource_type}/{r.get('id')}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in page
            ],
        }
        if offset + count < len(matches):
            query = [(k, v) for k, v in request.query if k != PAGE_OFFSET] + [(PAGE_OFFSET, str(offset + count))]
            next_url = f"{self._next_origin or self.origin}{BASE_PATH}/{resource_type}?{urlencode(query)}"
            bundle["link"].append({"relation": "next", "url": next_url})
        return bundle


def _matches(resource: dict[str, Any], request: RecordedRequest) -> bool:
    for name, value in request.query:
        if name == "_id" and resource.get("id") not in value.split(","):
            return False
        if name in ("patient", "subject"):
            wanted = {value, f"Patient/{value}"}
            references = {(resource.get(field) or {}).get("reference") for field in ("subject", "patient")}
            if not wanted & references:
                return False
        if name == "code":
            system, _, code = value.rpartition("|")
            codings = (resource.get("code") or {}).get("coding", [])
            if not any(c.get("code") == code and (not system or c.get("system") == system) for c in codings):
                return False
    return True


def _outcome(severity: str, code: str, diagnostics: str) -> bytes:
    issue = {"severity": severity, "code": code, "diagnostics": diagnostics}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()


class _Server(ThreadingHTTPServer):
    def __init__(self, stand_in: FhirServerStandIn, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.stand_in = stand_in

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a deadline passed) leaves a broken pipe behind: expected here, not worth a trace.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        assert isinstance(self.server, _Server)
        stand_in = self.server.stand_in
        parts = urlsplit(self.path)
        path = parts.path
        relative = path[len(BASE_PATH) + 1 :] if path.startswith(BASE_PATH + "/") else ""
        recorded = RecordedRequest(
            method=self.command,
            path=relative.strip("/") if relative else path,
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
            raw_query=parts.query,
            headers={name.lower(): value for name, value in self.headers.items()},
        )
        status, body = stand_in._answer(recorded)
        if stand_in._stopping.is_set():
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: the tests read `requests`, and pytest output stays clean.
        return


@pytest.fixture
def fhir_server() -> Iterator[FhirServerStandIn]:
    """A fresh FHIR server stand-in per test, taken down afterwards."""
    server = FhirServerStandIn()
    try:
        yield server
    finally:
        server.stop()
