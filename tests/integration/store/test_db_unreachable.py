"""A PostgreSQL server that accepts connections and then never answers (a partition, a proxy gone silent): the
engine gives up with an error instead of holding the caller's thread for ever."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from store.db import make_engine

# Far beyond the engine's connect timeout; without one, libpq would wait here for ever.
_GIVE_UP_BOUND_S = 60


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP listener whose accepted connections are held open and never read from or written to."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


def test_connecting_to_a_server_that_never_answers_fails_instead_of_hanging(silent_server: int) -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/test")
    raised: list[BaseException] = []

    def connect() -> None:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except BaseException as exc:  # collected for the assertion below, in the test's thread
            raised.append(exc)

    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    attempt.join(_GIVE_UP_BOUND_S)
    engine.dispose()

    assert not attempt.is_alive(), "the connection attempt still hangs: a silent database would hold this thread"
    assert len(raised) == 1 and isinstance(raised[0], OperationalError)
