"""A TCP proxy between the service and PostgreSQL that a run can cut and restore: the database disappearing, as the
service sees it, without stopping the PostgreSQL server that other work on this machine shares.

`cut("refuse")` resets every open connection and refuses new ones (the server stopped or restarted);
`cut("blackhole")` resets open ones and accepts new ones that never answer (a network partition).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Literal

Mode = Literal["refuse", "blackhole"]


class CuttableProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._blackhole = False
        self._cuts = 0  # a connection being opened across a cut must not slip through it
        self._thread = threading.Thread(target=self._loop.run_forever, name="db-proxy", daemon=True)
        self._thread.start()
        self._call(self._listen())

    def cut(self, mode: Mode = "refuse") -> None:
        self._call(self._cut(mode))

    def restore(self) -> None:
        self._call(self._restore())

    def close(self) -> None:
        self._call(self._cut("refuse"))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self, mode: Mode) -> None:
        self._blackhole = mode == "blackhole"
        self._cuts += 1
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            # abort(): a reset, as when the server process dies, rather than an orderly close.
            writer.transport.abort()
        self._writers.clear()

    async def _restore(self) -> None:
        self._blackhole = False
        if self._server is None:
            await self._listen()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._blackhole:
            self._writers.add(client_writer)
            return  # held open, never answered, until a restore or the client gives up
        cuts = self._cuts
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.transport.abort()
            return
        if cuts != self._cuts or self._server is None or self._blackhole:
            upstream_writer.transport.abort()
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, upstream_writer))
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        self._writers.difference_update((client_writer, upstream_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort() if self._blackhole else writer.close()
