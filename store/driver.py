"""The hot path's SQL on the session's own DB-API connection: statement text fixed per dialect, values converted
exactly as the column types (store.columns) convert them, so the rows are the ones SQLAlchemy would have written.

SQLAlchemy's execution machinery costs several times what SQLite spends running these statements; the session
still owns the transaction (BEGIN IMMEDIATE, advisory locks, commit), this module only borrows its cursor."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import JSON, Column, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from store.columns import UtcDateTime, document_text, document_value, stored_as_utc, to_utc

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@cache
def _pyformat(statement: str) -> str:
    # Named parameters are written `:name`, sqlite3's style; psycopg wants `%(name)s` (and no bare `%`).
    return _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))


class Driver:
    """Statement text and value conversion for one dialect."""

    __slots__ = ("postgres",)

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def sql(self, statement: str) -> str:
        return _pyformat(statement) if self.postgres else statement

    def instant(self, value: datetime | None) -> Any:
        """As UtcDateTime binds it: refused when naive; on SQLite the UTC text without offset that SQLAlchemy's
        DATETIME writes (always with microseconds)."""
        if type(value) is datetime and value.tzinfo is UTC:
            # Already in UTC, as nearly every instant the service makes is: the same value or text, sooner.
            return value if self.postgres else value.isoformat(" ", "microseconds")[: -len("+00:00")]
        utc = to_utc(value)
        if utc is None or self.postgres:
            return utc
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds")

    def read_instant(self, raw: Any) -> datetime | None:
        return stored_as_utc(datetime.fromisoformat(raw) if isinstance(raw, str) else raw)

    def document(self, value: Any) -> Any:
        """As the JSON column binds it: the document's text on SQLite (None is JSON null, as SQLAlchemy stores it),
        the same text as a json parameter on PostgreSQL."""
        return Json(value, dumps=document_text) if self.postgres else document_text(value)

    def read_document(self, raw: Any) -> Any:
        # psycopg hands json back parsed; SQLite keeps the text.
        return document_value(raw) if isinstance(raw, str | bytes) else raw


_DRIVERS = {name: Driver(name) for name in ("sqlite", "postgresql")}


def driver_of(session: Session) -> Driver:
    # The session's own bind when it has one (every session of the store does): get_bind resolves mappers first.
    bind = session.bind if session.bind is not None else session.get_bind()
    return driver_for(bind.dialect.name)


def driver_for(name: str) -> Driver:
    found = _DRIVERS.get(name)
    if found is None:
        raise ValueError(f"unsupported database backend {name!r}")
    return found


# Where a session keeps the DB-API connection of its current transaction: asking the session for its connection
# costs more than the statements run on it.
_RAW = "cds.driver.connection"


def cursor_of(session: Session) -> Any:
    """A DB-API cursor inside the session's transaction (begun as the session begins it, if it had not yet)."""
    transaction = session.get_transaction()
    cached = session.info.get(_RAW)
    if cached is not None and transaction is not None and cached[0] is transaction and transaction.is_active:
        return cached[1].cursor()
    raw = session.connection().connection.driver_connection
    session.info[_RAW] = (session.get_transaction(), raw)
    return raw.cursor()  # type: ignore[union-attr]


def hold_for_transaction(session: Session, key: str, value: Any) -> Any:
    """Keep `value` on the session under `key` for its current transaction only (a later one finds nothing there)."""
    session.info[key] = (session.get_transaction(), value)
    return value


def of_transaction(session: Session, key: str, new: Callable[[], Any]) -> Any:
    """What the session keeps under `key` for its current transaction, made anew (never None) for a new one."""
    held = held_for_transaction(session, key)
    return hold_for_transaction(session, key, new()) if held is None else held


def held_for_transaction(session: Session, key: str) -> Any:
    """What the session keeps under `key` for its current transaction; None when it keeps nothing for it."""
    held = session.info.get(key)
    if held is None or held[0] is not session.get_transaction():
        return None
    return held[1]


def _converter(driver: Driver, column: Column[Any]) -> Callable[[Any], Any] | None:
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return driver.instant
    if isinstance(kind, JSON):
        return driver.document
    return None


@cache
def _conversions(dialect: str, table: Table, columns: tuple[str, ...]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """The positions among `columns` whose values the column type converts, each with its conversion."""
    driver = _DRIVERS[dialect]
    found = ((i, _converter(driver, table.c[name])) for i, name in enumerate(columns))
    return tuple((i, convert) for i, convert in found if convert is not None)


def _converted(row: Sequence[Any], width: int, conversions: tuple[tuple[int, Callable[[Any], Any]], ...]) -> list[Any]:
    if len(row) != width:
        raise ValueError(f"a row of {len(row)} values for {width} columns")
    values = list(row)
    for i, convert in conversions:
        values[i] = convert(values[i])
    return values


# Table and column names come from our own schema (store.tables), never from input; the text is joined from
# parts rather than formatted.
@cache
def _insert_text(dialect: str, table: Table, columns: tuple[str, ...], count: int, returning: bool) -> str:
    into = " ".join(("INSERT INTO", table.name, "(" + ", ".join(columns) + ")"))
    if dialect != "postgresql":
        row = "(" + ", ".join("?" * len(columns)) + ")"
        return " ".join((into, "VALUES", ", ".join([row] * count), "RETURNING id" if returning else ""))
    if not returning:
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        return " ".join((into, "VALUES", ", ".join([row] * count)))
    # Ids in the rows' order: PostgreSQL draws sequence values in the order of the SELECT's ORDER BY (as
    # SQLAlchemy's own sorted insertmanyvalues relies on); the casts type the VALUES columns, NULLs included.
    pg = postgresql.dialect()
    casts = ", ".join(f"p{i}::{table.c[name].type.compile(dialect=pg)}" for i, name in enumerate(columns))
    row = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
    names = ", ".join(f"p{i}" for i in range(len(columns)))
    values = " ".join(("(VALUES", ", ".join([row] * count) + ")", "AS", "v(" + names + ", n)"))
    return " ".join((into, "SELECT", casts, "FROM", values, "ORDER BY n RETURNING id"))


@cache
def _unnest_text(table: Table, columns: tuple[str, ...], returning: bool) -> str:
    """PostgreSQL: one statement for any number of rows, a column's values in one array parameter. Its text never
    changes, so psycopg parses it once and the server plans it once (prepared), whatever the rows' count."""
    pg = postgresql.dialect()
    # Binary arrays (%b): in text form every element is quoted and escaped, a JSON document's every quote with it
    # (measured: 1.1 ms against 0.11 ms for 4 rows of 2 KB documents), and the server has to undo it.
    arrays = ", ".join(f"%b::{table.c[name].type.compile(dialect=pg)}[]" for name in columns)
    names = ", ".join(f"c{i}" for i in range(len(columns)))
    into = " ".join(("INSERT INTO", table.name, "(" + ", ".join(columns) + ")"))
    # Ids in the rows' order: sequence values are drawn in the order of the SELECT's ORDER BY (see _insert_text).
    select = " ".join(("SELECT", names, "FROM unnest(" + arrays + ")", "WITH ORDINALITY AS v(" + names + ", n)"))
    return " ".join((into, select, "ORDER BY n", "RETURNING id" if returning else ""))


@cache
def _insert_new_text(dialect: str, table: Table, columns: tuple[str, ...], count: int, key: str) -> str:
    """An INSERT of `count` rows (0: PostgreSQL's array form) that skips a row whose `key` is taken, returning the
    keys of the rows it inserted."""
    rows = _unnest_text(table, columns, False) if count == 0 else _insert_text(dialect, table, columns, count, False)
    return " ".join((rows.rstrip(), "ON CONFLICT (" + key + ") DO NOTHING RETURNING", key))


def insert_new(
    cursor: Any, driver: Driver, table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]], key: str
) -> set[Any]:
    """Multi-row INSERTs of `rows` (as insert_rows takes them) that skip any row whose `key`, a unique column, is
    taken already; the keys of the rows inserted. A taken key waits, as ON CONFLICT does, for a transaction still
    inserting it to end."""
    if not rows:
        return set()
    dialect = "postgresql" if driver.postgres else "sqlite"
    conversions = _conversions(dialect, table, columns)
    width = len(columns)
    if driver.postgres:
        arrays = _column_arrays(rows, width, conversions)
        if arrays is not None:
            cursor.execute(_insert_new_text(dialect, table, columns, 0, key), arrays)
            return {row[0] for row in cursor.fetchall()}
    chunk = max(1, _PG_CACHED_PARAMETERS // width) if driver.postgres else len(rows)
    inserted: set[Any] = set()
    for first in range(0, len(rows), chunk):
        part = rows[first : first + chunk]
        values = [value for row in part for value in _converted(row, width, conversions)]
        cursor.execute(_insert_new_text(dialect, table, columns, len(part), key), values)
        inserted.update(row[0] for row in cursor.fetchall())
    return inserted


def _column_arrays(
    rows: Sequence[Sequence[Any]], width: int, conversions: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> list[list[Any]] | None:
    """The rows' values column by column, converted; None when a column mixes types that psycopg will not put in
    one array (a float column's whole numbers become floats, as PostgreSQL would make them)."""
    converted = [_converted(row, width, conversions) for row in rows]
    columns = [list(column) for column in zip(*converted, strict=True)]
    for index, column in enumerate(columns):
        kinds = {type(value) for value in column if value is not None}
        if len(kinds) <= 1:
            continue
        if kinds == {int, float}:
            columns[index] = [value if value is None else float(value) for value in column]
        else:
            return None
    return columns


# psycopg parses a statement's placeholders once and keeps the result only for statements of at most 50
# parameters; a bigger one is parsed again on every call (about 130 µs of CPU for 8 rows of 11 values, against about
# 80 µs for the whole cached statement). On PostgreSQL the rows go in statements of at most this many values.
_PG_CACHED_PARAMETERS = 50


def insert_rows(
    cursor: Any,
    driver: Driver,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    returning_ids: bool = False,
) -> list[int]:
    """Multi-row INSERTs of `rows` (values in `columns` order, converted here as the column types convert them):
    one on SQLite; one on PostgreSQL, its columns as arrays (or, for a column of mixed types, as few VALUES
    statements as keep each cached); with `returning_ids`, the new ids in the order of `rows`."""
    if not rows:
        return []
    dialect = "postgresql" if driver.postgres else "sqlite"
    conversions = _conversions(dialect, table, columns)
    width = len(columns)
    if not returning_ids and not driver.postgres:
        # sqlite3 runs one prepared single-row statement per row about twice as fast as one multi-row statement.
        cursor.executemany(
            _insert_text(dialect, table, columns, 1, False), [_converted(row, width, conversions) for row in rows]
        )
        return []
    if driver.postgres:
        arrays = _column_arrays(rows, width, conversions)
        if arrays is not None:
            cursor.execute(_unnest_text(table, columns, returning_ids), arrays)
            return sorted(row[0] for row in cursor.fetchall()) if returning_ids else []
    numbered = returning_ids and driver.postgres
    per_row = len(columns) + numbered
    chunk = max(1, _PG_CACHED_PARAMETERS // per_row) if driver.postgres else len(rows)
    ids: list[int] = []
    for first in range(0, len(rows), chunk):
        part = rows[first : first + chunk]
        values: list[Any] = []
        for number, row in enumerate(part):
            values.extend(_converted(row, width, conversions))
            if numbered:
                values.append(number)
        cursor.execute(_insert_text(dialect, table, columns, len(part), returning_ids), values)
        if returning_ids:
            # On SQLite the transaction holds the writer lock and each row takes the next rowid, so ascending ids
            # are the rows' order there too; RETURNING itself promises no order on either backend.
            ids.extend(sorted(row[0] for row in cursor.fetchall()))
    return ids
