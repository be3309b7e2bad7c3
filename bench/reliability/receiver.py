"""A local webhook receiver for the outbox runs: counts deliveries by Idempotency-Key, and can go down (its port
closed) and come back on the same port, or answer 503 for a while."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self, *, port: int = 0, work_s: float = 0.0) -> None:
        self.received: Counter[str] = Counter()
        self.first_seen: dict[str, float] = {}
        self.refused = 0  # requests answered 503 while failing
        self.work_s = work_s
        self.failing = False
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self.port = port
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        if self._server is not None:
            return
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        """Close the port: senders get connection refused, as from a receiver that is not running."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        # Closing the listener leaves kept-alive connections served; a receiver that is down answers none.
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def record(self, key: str) -> int:
        with self._lock:
            if self.failing:
                self.refused += 1
                return 503
            self.received[key] += 1
            self.first_seen.setdefault(key, time.perf_counter())
            return 200

    @property
    def duplicates(self) -> int:
        """Deliveries of a key already received: a receiver honouring Idempotency-Key applies them once."""
        with self._lock:
            return sum(count - 1 for count in self.received.values())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver) -> None:
        super().__init__(address, _Handler)
        self.receiver = receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a sender killed mid-request leaves a broken connection behind: expected in these runs


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        assert isinstance(self.server, _Server)
        self.server.receiver.track(self.connection, True)

    def finish(self) -> None:
        assert isinstance(self.server, _Server)
        self.server.receiver.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_POST(self) -> None:
        assert isinstance(self.server, _Server)
        receiver = self.server.receiver
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if receiver.work_s:
            time.sleep(receiver.work_s)
        status = receiver.record(self.headers.get("Idempotency-Key", ""))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return
