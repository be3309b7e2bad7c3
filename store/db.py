"""Engines and sessions: SQLite tuned for one embedded writer, PostgreSQL pooled for a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
PG_POOL_SIZE = 5
PG_MAX_OVERFLOW = 10
# Recycle before typical firewall/proxy idle cut-offs so a long-idle pool does not hand out dead connections.
PG_POOL_RECYCLE_S = 1800


def make_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for `url` with the settings this service relies on (see the per-backend helpers)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    if backend == "postgresql":
        return create_engine(
            parsed,
            echo=echo,
            pool_pre_ping=True,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_MAX_OVERFLOW,
            pool_recycle=PG_POOL_RECYCLE_S,
        )
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: callers get plain values back, not lazy reloads.
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_file_sqlite(url: URL) -> bool:
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:")


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    if is_file_sqlite(url):
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
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
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the writer lock at the start, so a transaction that reads the audit chain head and
        # then appends cannot interleave with another writer; waiters queue on busy_timeout instead of failing.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
