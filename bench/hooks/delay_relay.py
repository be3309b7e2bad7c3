"""A TCP relay that holds every chunk for a fixed time in each direction: the hook benchmark's PostgreSQL on another
host (`--database-delay-us`). Loopback answers a round trip in about 0.1 ms; a database server across a network
takes several times that, and a hook call that waits on its round trips one after another pays for each."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class DelayRelay:
    """Listens on a free loopback port and relays each connection to `target`, sleeping `delay_s` before passing on
    each chunk read (order is kept: one thread per direction)."""

    def __init__(self, target: tuple[str, int], delay_s: float) -> None:
        self._target = target
        self._delay_s = delay_s
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._stopping = False

    def start(self) -> DelayRelay:
        threading.Thread(target=self._accept, name="delay-relay", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._server.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            for end in (client, upstream):
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                time.sleep(self._delay_s)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
