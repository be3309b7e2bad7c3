"""SQLite's WAL copied into the database file beside the hook path, not inside its commits.

Left to SQLite, the connection whose commit takes the write-ahead log past 1,000 pages copies every page into the
database file (a checkpoint) before its commit returns. A batch of eight hook calls writes about 166 pages, so one
batch in six paid for a checkpoint: measured in process, its commit took 14 ms instead of 4 (8 ms of it CPU) at the
90th percentile, and the calls of that batch waited for it.

`WalCheckpointer` runs the checkpoint on a thread of its own, woken by every commit of its engine. sqlite3 releases
the interpreter lock while a checkpoint runs, so it goes on beside the hook thread, on the other core. A checkpoint
that finishes before the next write transaction begins also lets that writer start the log over from its first page,
so the log stays about one transaction long instead of growing to 1,000 pages between checkpoints.

The engine must be made with `make_engine(..., background_checkpoints=True)`: its connections then leave the copying
to this thread, up to a safety net of SQLITE_BACKGROUND_AUTOCHECKPOINT_PAGES (store.db) for when it is not running or
cannot keep up. PASSIVE checkpoints never wait for readers or writers; one that finds another checkpoint running (a
second worker process's) gives way, and the next commit wakes it again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from store.db import is_file_sqlite

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, engine: Engine) -> None:
        if not is_file_sqlite(engine.url) or engine.url.database is None:
            raise ValueError("a WAL checkpointer needs a SQLite database file")
        self._engine = engine
        self._path = engine.url.database
        self._changed = threading.Condition()
        self._commits = 0  # commits seen
        self._covered = 0  # commits a finished checkpoint came after
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0  # checkpoints run, for diagnostics and tests

    def start(self) -> Callable[[], None]:
        """Start the thread; returns the stop, which lets a running checkpoint finish."""
        if self._thread is not None:
            raise RuntimeError("the checkpointer is already running")
        # Opened here, so a database that cannot be opened fails the start, not the thread.
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=0)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, args=(connection,), name="wal-checkpoint", daemon=True)
        # After store.db's own commit listener, which makes the commit itself: the wake follows the commit.
        event.listen(self._engine, "commit", self._on_commit)
        self._thread.start()
        return self.stop

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._thread is None:
            return
        event.remove(self._engine, "commit", self._on_commit)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout_s)
        self._thread = None

    def settled(self, timeout_s: float = 10.0) -> bool:
        """Wait until a checkpoint has run after every commit seen so far (tests, shutdown)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._covered >= self._commits or self._stopping, timeout_s)

    def _on_commit(self, _connection: Any) -> None:
        with self._changed:
            self._commits += 1
            self._changed.notify_all()

    def _run(self, connection: sqlite3.Connection) -> None:
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._stopping or self._commits > self._covered)
                    if self._stopping:
                        return
                    # Commits after this point wake the thread for one more checkpoint.
                    target = self._commits
                self._checkpoint(connection)
                with self._changed:
                    self._covered = target
                    self._changed.notify_all()
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            # The database is still consistent: the pages stay in the log and the next commit tries again.
            log.warning("wal checkpoint failed: %s", type(exc).__name__)
            return
        self.checkpoints += 1
