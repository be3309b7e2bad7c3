"""Local stand-ins for the outside world notify talks to: a webhook receiver and a FHIR server accepting
Communications, both real HTTP on 127.0.0.1, scripted to fail or stall on demand, recording what arrived."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from fhir.resources.R4B.communication import Communication

from notify.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


@dataclass(frozen=True)
class Arrival:
    key: str | None
    body: bytes
    headers: dict[str, str]
    status: int
    at: float  # time.monotonic() on arrival
    signed: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up mid-answer leaves a broken pipe: expected in these tests, not worth a trace.
        return


class _StandIn:
    """Shared plumbing: serve on a free loopback port, answer with scripted statuses, record every arrival."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self._script: list[int] = []
        self.default_status = 200
        self.delay_seconds = 0.0
        stand_in = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, answer = stand_in.answer(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                # One request per connection, so `stop()` really takes the receiver down (no kept-alive socket).
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self.origin = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def respond(self, *statuses: int, then: int | None = None) -> None:
        """Answer the next requests with `statuses` in turn, then with `then` (or the current default)."""
        with self.lock:
            self._script = list(statuses)
            if then is not None:
                self.default_status = then

    def next_status(self) -> int:
        with self.lock:
            return self._script.pop(0) if self._script else self.default_status

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class WebhookReceiver(_StandIn):
    """Checks each signature, and takes each idempotency key into account once, however often it arrives."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.accepted: Counter[str] = Counter()
        super().__init__()
        self.url = self.origin + "/hook"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        key = headers.get(IDEMPOTENCY_HEADER.lower())
        signed = verify_signature(
            self.secret, headers.get(TIMESTAMP_HEADER.lower(), ""), body, headers.get(SIGNATURE_HEADER.lower())
        )
        status = self.next_status() if signed else 401
        with self.lock:
            self.arrivals.append(Arrival(key, body, headers, status, time.monotonic(), signed))
            if 200 <= status < 300 and key is not None:
                self.accepted[key] += 1
        return status, b"{}"

    def seen(self) -> Counter[str]:
        """How often each idempotency key arrived, answered or not."""
        with self.lock:
            return Counter(a.key for a in self.arrivals if a.key is not None)

    def processed(self) -> set[str]:
        """The keys a receiver deduplicating on the idempotency key would have acted on: each once."""
        with self.lock:
            return set(self.accepted)


class FhirCommunicationServer(_StandIn):
    """Accepts POST /fhir/Communication as a FHIR server would: validates it, honours If-None-Exist on the
    identifier (201 for a new resource, 200 when one matches), and requires the configured bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.created: dict[str, dict[str, Any]] = {}  # "system|value" -> resource
        super().__init__()
        self.base_url = self.origin + "/fhir"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        status = self.next_status()
        if headers.get("authorization") != f"Bearer {self.token}":
            status = 401
        elif path != "/fhir/Communication":
            status = 404
        elif 200 <= status < 300:
            status = self._create(headers, body)
        with self.lock:
            self.arrivals.append(Arrival(None, body, headers, status, time.monotonic(), signed=False))
        return status, b"{}"

    def _create(self, headers: dict[str, str], body: bytes) -> int:
        resource = json.loads(body)
        Communication.model_validate(resource)  # raises (and the handler answers 500) when invalid
        condition = dict(parse_qsl(headers.get("if-none-exist", "")))
        wanted = condition.get("identifier", "")
        with self.lock:
            if wanted in self.created:
                return 200
            identifier = resource["identifier"][0]
            self.created[f"{identifier['system']}|{identifier['value']}"] = resource
        return 201
