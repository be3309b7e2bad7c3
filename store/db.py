"""Engines and sessions: SQLite tuned for one embedded writer, PostgreSQL pooled for a server."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from store.columns import document_text, document_value

SQLITE_BUSY_TIMEOUT_MS = 10_000
# With a WalCheckpointer copying the log after every commit (store.checkpoints), the committing connection copies it
# itself only past this many pages (SQLite's default is 1,000): the safety net for when the thread is not running.
SQLITE_BACKGROUND_AUTOCHECKPOINT_PAGES = 10_000
PG_POOL_SIZE = 5
PG_MAX_OVERFLOW = 10
# Recycle before typical firewall/proxy idle cut-offs so a long-idle pool does not hand out dead connections.
PG_POOL_RECYCLE_S = 1800
# A database that stops answering (a partition, a host gone without a reset) must cost a call seconds, not a thread
# for ever: libpq waits without limit to connect and TCP notices a dead peer only after hours. A URL's own values win.
PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
# How every engine of the store writes and reads JSON documents: the codec the raw statements of store.driver use.
DOCUMENT_CODEC: dict[str, Any] = {"json_serializer": document_text, "json_deserializer": document_value}
# Marks, on a pooled SQLite connection, that its open transaction holds the process's writer turn.
_TURN = "cds.sqlite_writer_turn"


def make_engine(url: str | URL, *, echo: bool = False, background_checkpoints: bool = False) -> Engine:
    """An engine for `url` with the settings this service relies on (see the per-backend helpers).

    `background_checkpoints`: a SQLite file's commits leave copying the log into the database to a WalCheckpointer
    (store.checkpoints), which the caller runs; no effect on other databases."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, echo=echo, background_checkpoints=background_checkpoints)
    if backend == "postgresql":
        return create_engine(
            parsed,
            echo=echo,
            pool_pre_ping=True,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_MAX_OVERFLOW,
            pool_recycle=PG_POOL_RECYCLE_S,
            **DOCUMENT_CODEC,
            connect_args={k: v for k, v in PG_CONNECT_ARGS.items() if k not in parsed.query},
        )
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: callers get plain values back, not lazy reloads.
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_file_sqlite(url: URL) -> bool:
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:")


def _sqlite_engine(url: URL, *, echo: bool, background_checkpoints: bool) -> Engine:
    if is_file_sqlite(url):
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **DOCUMENT_CODEC)
    wal = is_file_sqlite(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module: it would otherwise BEGIN lazily, before the
        # first write only, which breaks SAVEPOINT and lets a read run outside the writer lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                # WAL lets readers proceed while one writer writes; NORMAL sync is durable at checkpoints in WAL.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                if background_checkpoints:
                    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_BACKGROUND_AUTOCHECKPOINT_PAGES}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    if wal:
        _queue_writers(engine)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the writer lock at the start, so a transaction that reads the audit chain head and
        # then appends cannot interleave with another writer; waiters queue on busy_timeout instead of failing.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _queue_writers(engine: Engine) -> None:
    """Threads of this process take turns for SQLite's writer lock on a Python lock, before BEGIN IMMEDIATE.

    SQLite's own busy handler polls with sleeps growing to 100 ms, so under concurrent hook calls an unlucky
    waiter keeps losing the lock to threads that arrive later and sleeps on until its deadline. A Python lock hands
    the turn over as soon as the holder commits or rolls back. Other processes still meet the busy handler. The
    turn is released after the COMMIT or ROLLBACK itself has run (sqlite3 makes the driver's own call that follows
    a no-op), and a connection going back to the pool with its turn still held gives it back.
    """
    turn = threading.Lock()

    def take(connection: Any) -> None:
        # After the busy timeout, go on without the turn: SQLite's busy handler decides, as it did before.
        if turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            connection.info[_TURN] = True

    def give_back(info: dict[Any, Any]) -> None:
        if info.pop(_TURN, False):
            turn.release()

    @event.listens_for(engine, "begin")
    def _take_turn(connection: Any) -> None:
        take(connection)

    @event.listens_for(engine, "commit")
    def _commit_then_give_back(connection: Any) -> None:
        try:
            connection.connection.dbapi_connection.commit()
        except Exception:
            # SQLAlchemy's own commit follows and raises this as its error type; the turn then goes back with
            # the rollback or when the connection returns to the pool.
            return
        give_back(connection.info)

    @event.listens_for(engine, "rollback")
    def _roll_back_then_give_back(connection: Any) -> None:
        try:
            connection.connection.dbapi_connection.rollback()
        except Exception:
            return  # as for commit: raised by SQLAlchemy's own call; given back on return to the pool
        give_back(connection.info)

    @event.listens_for(engine, "checkin")
    def _give_back_on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            give_back(record.info)

    @event.listens_for(engine, "invalidate")
    def _give_back_on_invalidate(_dbapi_connection: Any, record: Any, _exception: Any) -> None:
        if record is not None:
            give_back(record.info)
