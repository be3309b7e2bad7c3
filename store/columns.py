"""Portable column types: JSON documents (JSON text on both backends) and timezone-aware instants stored as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# JSON text on PostgreSQL too (TEXT on SQLite): each document is written once and read back whole, and no statement
# looks inside one, so JSONB's parse into its binary form on the way in (and print on the way out) was only cost:
# 15 % of the server's CPU a hook call (migration 0008 says more).
JsonDocument: TypeEngine[Any] = JSON()


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def document_text(value: Any) -> str:
    """The JSON text a document column stores, on both backends and through both write paths (the engine's own
    and the raw statements of store.driver): orjson, about ten times json.dumps on the risk outputs' documents.
    Compact, UTF-8 as is; keys that are not strings are written as strings, numpy scalars as
    numbers. NaN and infinities, which JSON has no words for, are written as null (json.dumps wrote a bare NaN
    that PostgreSQL refuses and no other JSON reader takes). Anything else JSON has no form for (a set, an object)
    raises TypeError naming its type.
    """
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def document_value(text: str | bytes) -> Any:
    return orjson.loads(text)


class UtcDateTime(TypeDecorator[datetime]):
    """An instant: refuses naive datetimes on the way in, and always comes back aware, in UTC.

    SQLite has no timezone type and hands back naive values; stored values are UTC, so UTC is attached on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        utc = to_utc(value)
        # SQLite stores the text as given; dropping the offset keeps the text sortable and uniform.
        return utc.replace(tzinfo=None) if utc is not None and dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return stored_as_utc(value)


def to_utc(value: datetime | None) -> datetime | None:
    """An instant on its way into the store, in UTC; a naive time is refused."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time is ambiguous about its zone; storing it would silently shift events by hours.
        raise ValueError("naive datetime refused: instants must carry a timezone")
    return value.astimezone(UTC)


def stored_as_utc(value: datetime | None) -> datetime | None:
    """An instant read back, aware and in UTC (stored values are UTC; SQLite hands them back naive)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
