"""Statements on the DB-API cursor of a session's connection, for the hook path's hot reads: SQL text with `:name`
parameters, written once and turned into the driver's paramstyle, values in the types the columns store."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy.orm import Session


class Driver:
    """One dialect's paramstyle and the conversions of values that store.columns' types make."""

    __slots__ = ("postgres",)

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def sql(self, statement: str) -> str:
        return _pyformat(statement) if self.postgres else statement

    def instant(self, value: datetime | None) -> Any:
        """An aware instant as UtcDateTime binds it: naive UTC text in SQLAlchemy's SQLite format, else as is."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: instants must carry a timezone")
        if self.postgres:
            return value
        utc = value.astimezone(UTC)
        return (
            f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} {utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
            f".{utc.microsecond:06d}"
        )

    def read_instant(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def read_document(self, value: Any) -> Any:
        # psycopg hands JSONB back parsed; SQLite keeps the text.
        return orjson.loads(value) if isinstance(value, str | bytes) else value


@cache
def _driver(dialect: str) -> Driver:
    return Driver(dialect)


def driver_of(session: Session) -> Driver:
    return _driver(session.get_bind().dialect.name)


def cursor_of(session: Session) -> Any:
    """A DB-API cursor in the session's transaction (begun if need be: on SQLite, BEGIN IMMEDIATE)."""
    return session.connection().connection.driver_connection.cursor()


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@cache
def _pyformat(statement: str) -> str:
    return _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))
