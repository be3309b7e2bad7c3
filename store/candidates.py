"""Live candidates in the database: creation and stage changes with their history and audit records, the hot-path
read of a service's evaluated candidates, and the shadow decisions recorded beside live calls."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, Table, create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from shadow.canary import new_salt
from shadow.recorded import ShadowDecision
from shadow.stages import (
    EVALUATED,
    SERVING,
    BucketBy,
    CandidateAuditKind,
    CandidateDraft,
    CandidateKind,
    CandidateNotFoundError,
    CandidateRecord,
    Stage,
    StageChange,
    check_fraction,
    check_transition,
)
from store.db import DOCUMENT_CODEC, is_file_sqlite, make_session_factory
from store.driver import Driver, driver_for
from store.port import AuditEntry
from store.repository import SqlRepository
from store.tables import CandidateRow, CandidateStageChangeRow, ShadowDecisionRow

_CANDIDATES: Table = CandidateRow.__table__  # type: ignore[assignment]
_SHADOW: Table = ShadowDecisionRow.__table__  # type: ignore[assignment]
# The hot path's read, as text for the connection's DB-API cursor (store.driver): SQLAlchemy's execution machinery
# cost more than the indexed query itself. The stages are our own constants.
_EVALUATED_COLUMNS = (
    *("id", "service_id", "kind", "spec", "model_version", "stage", "fraction", "bucket_by", "salt"),
    *("created_by", "created_at", "changed_at"),
)
_EVALUATED_SQL = " ".join(
    (
        "SELECT",
        ", ".join(_EVALUATED_COLUMNS),
        "FROM candidates WHERE service_id = :service_id AND stage IN",
        "(" + ", ".join(f"'{stage}'" for stage in sorted(str(s) for s in EVALUATED)) + ")",
        "ORDER BY id",
    )
)


def _service_lock_key(service_id: str) -> int:
    return int.from_bytes(hashlib.sha256(b"cds.candidates:" + service_id.encode()).digest()[:8], "big", signed=True)


class SqlCandidateStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions: sessionmaker[Session] = make_session_factory(engine)
        self._reader = _autocommit_reader(engine)

    @contextmanager
    def _transaction(self, service_id: str | None = None) -> Iterator[Session]:
        with self._sessions() as session:
            if service_id is not None and session.get_bind().dialect.name == "postgresql":
                # Stage changes of one service in turn, so two cannot both become its serving candidate. (SQLite's
                # IMMEDIATE transaction already holds the only writer lock.)
                session.execute(select(func.pg_advisory_xact_lock(_service_lock_key(service_id))))
            yield session
            session.commit()

    def create(self, draft: CandidateDraft, *, actor: str, comment: str, at: datetime) -> CandidateRecord:
        check_fraction(draft.fraction)
        with self._transaction(draft.service_id) as session:
            row = CandidateRow(
                service_id=draft.service_id,
                kind=str(draft.kind),
                spec=draft.spec,
                model_version=draft.model_version,
                stage=str(Stage.SHADOW),
                fraction=draft.fraction,
                bucket_by=str(draft.bucket_by),
                salt=new_salt(),
                created_by=actor,
                created_at=at,
                changed_at=at,
            )
            session.add(row)
            session.flush()
            self._log_change(session, row, None, actor, comment, at, CandidateAuditKind.CREATED)
            return _record(row)

    def change_stage(
        self, candidate_id: int, target: Stage, *, actor: str, comment: str, at: datetime, fraction: float | None = None
    ) -> CandidateRecord:
        """Move a candidate one stage (shadow.stages.check_transition); raises StageChangeRefused otherwise."""
        service_id = self._service_of(candidate_id)
        with self._transaction(service_id) as session:
            row = self._row(session, candidate_id)
            others = session.scalar(
                select(func.count())
                .select_from(CandidateRow)
                .where(
                    CandidateRow.service_id == row.service_id,
                    CandidateRow.id != row.id,
                    CandidateRow.stage.in_([str(s) for s in SERVING]),
                )
            )
            new_fraction = row.fraction if fraction is None else fraction
            check_transition(Stage(row.stage), target, others_serving=int(others or 0), fraction=new_fraction)
            before = Stage(row.stage)
            row.stage, row.fraction, row.changed_at = str(target), new_fraction, at
            self._log_change(session, row, before, actor, comment, at, CandidateAuditKind.STAGE_CHANGED)
            return _record(row)

    def kill(self, candidate_id: int, *, actor: str, comment: str, at: datetime) -> CandidateRecord:
        """The kill switch: off from any stage, at once. Killing a candidate already off changes nothing."""
        service_id = self._service_of(candidate_id)
        with self._transaction(service_id) as session:
            row = self._row(session, candidate_id)
            if row.stage == Stage.OFF:
                return _record(row)
            before = Stage(row.stage)
            row.stage, row.changed_at = str(Stage.OFF), at
            self._log_change(session, row, before, actor, comment, at, CandidateAuditKind.KILLED)
            return _record(row)

    def get(self, candidate_id: int) -> CandidateRecord:
        with self._sessions() as session:
            return _record(self._row(session, candidate_id))

    def candidates(self, service_id: str | None = None) -> list[CandidateRecord]:
        query = select(CandidateRow).order_by(CandidateRow.id)
        if service_id is not None:
            query = query.where(CandidateRow.service_id == service_id)
        with self._sessions() as session:
            return [_record(row) for row in session.scalars(query)]

    def history(self, candidate_id: int) -> list[StageChange]:
        query = (
            select(CandidateStageChangeRow)
            .where(CandidateStageChangeRow.candidate_id == candidate_id)
            .order_by(CandidateStageChangeRow.id)
        )
        with self._sessions() as session:
            return [
                StageChange(
                    candidate_id=r.candidate_id,
                    from_stage=Stage(r.from_stage) if r.from_stage else None,
                    to_stage=Stage(r.to_stage),
                    fraction=r.fraction,
                    actor=r.actor,
                    comment=r.comment,
                    at=r.at,
                )
                for r in session.scalars(query)
            ]

    def evaluated(self, service_id: str) -> list[CandidateRecord]:
        """The service's candidates in shadow, canary or live: read on every hook call, so one plain indexed query
        on a connection (no session), and never cached, so a stage change or kill applies to the very next call."""
        driver = driver_for(self._reader.dialect.name)
        if driver.postgres:
            # AUTOCOMMIT is this engine's execution option, which only a Connection applies.
            with self._reader.connect() as connection:
                rows = _evaluated_rows(connection.connection.driver_connection, driver, service_id)
        else:
            # SQLite's reader is autocommit from its connections up (or, in memory, never begins on a bare cursor):
            # the pool's connection alone reads the same, without a Connection around it.
            pooled = self._reader.raw_connection()
            try:
                rows = _evaluated_rows(pooled.driver_connection, driver, service_id)
            finally:
                pooled.close()
        return [_evaluated_record(driver, row) for row in rows]

    def record_shadow(self, decisions: Sequence[ShadowDecision]) -> None:
        if not decisions:
            return
        with self._sessions() as session:
            session.execute(_SHADOW.insert(), [_shadow_row(d) for d in decisions])
            session.commit()

    def shadow_decisions(self, candidate_id: int) -> list[dict[str, Any]]:
        """Every decision recorded for a candidate, as plain rows for the comparison report."""
        columns = [_SHADOW.c[name] for name in _REPORT_COLUMNS]
        query = select(*columns).where(_SHADOW.c.candidate_id == candidate_id).order_by(_SHADOW.c.id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
            connection.rollback()
        return [dict(row._mapping) for row in rows]

    def _service_of(self, candidate_id: int) -> str:
        with self._sessions() as session:
            service_id = session.scalar(select(CandidateRow.service_id).where(CandidateRow.id == candidate_id))
        if service_id is None:
            raise CandidateNotFoundError(candidate_id)
        return service_id

    def _row(self, session: Session, candidate_id: int) -> CandidateRow:
        row = session.get(CandidateRow, candidate_id)
        if row is None:
            raise CandidateNotFoundError(candidate_id)
        return row

    def _log_change(
        self,
        session: Session,
        row: CandidateRow,
        before: Stage | None,
        actor: str,
        comment: str,
        at: datetime,
        kind: CandidateAuditKind,
    ) -> None:
        session.add(
            CandidateStageChangeRow(
                candidate_id=row.id,
                from_stage=str(before) if before else None,
                to_stage=row.stage,
                fraction=row.fraction,
                actor=actor,
                comment=comment,
                at=at,
            )
        )
        # The comment is free text an informaticist typed: the hash-chained audit log keeps whether there was
        # one, the stage history keeps the words.
        payload = {
            "candidate": row.id,
            "service": row.service_id,
            "kind": row.kind,
            "spec": row.spec,
            "model_version": row.model_version,
            "from": str(before) if before else None,
            "to": row.stage,
            "fraction": row.fraction,
            "commented": bool(comment.strip()),
        }
        SqlRepository(session).append_audit(
            AuditEntry(actor=actor, kind=str(kind), subject=f"candidate:{row.id}", at=at, payload=payload)
        )


_REPORT_COLUMNS = (
    *("hook_instance", "stage", "served", "bucket", "scorer_id", "band", "action", "reasons", "route"),
    *("live_action", "live_reasons", "live_route"),
)


def _autocommit_reader(engine: Engine) -> Engine:
    """An engine for the hot-path read that opens no transaction. On SQLite the store's engine begins every
    transaction IMMEDIATE (store.db), which would queue each hook call's read behind every writer; a separate
    autocommit engine reads the last committed state under WAL without waiting. On PostgreSQL the same pool does."""
    if engine.dialect.name != "sqlite":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    if not is_file_sqlite(engine.url):
        return engine  # an in-memory database exists only behind its own engine
    reader = create_engine(engine.url, isolation_level="AUTOCOMMIT", **DOCUMENT_CODEC)
    weakref.finalize(engine, reader.dispose)
    return reader


def _evaluated_rows(connection: Any, driver: Driver, service_id: str) -> list[Any]:
    cursor = connection.cursor()
    try:
        cursor.execute(driver.sql(_EVALUATED_SQL), {"service_id": service_id})
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _evaluated_record(driver: Driver, row: Sequence[Any]) -> CandidateRecord:
    values = dict(zip(_EVALUATED_COLUMNS, row, strict=True))
    values["created_at"] = driver.read_instant(values["created_at"])
    values["changed_at"] = driver.read_instant(values["changed_at"])
    return _record(SimpleNamespace(**values))


def _record(row: Any) -> CandidateRecord:
    return CandidateRecord(
        id=row.id,
        service_id=row.service_id,
        kind=CandidateKind(row.kind),
        spec=row.spec,
        model_version=row.model_version,
        stage=Stage(row.stage),
        fraction=row.fraction,
        bucket_by=BucketBy(row.bucket_by),
        salt=row.salt,
        created_by=row.created_by,
        created_at=row.created_at,
        changed_at=row.changed_at,
    )


def _shadow_row(d: ShadowDecision) -> dict[str, Any]:
    return {
        "candidate_id": d.candidate_id,
        "hook_instance": d.hook_instance,
        "service_id": d.service_id,
        "stage": str(d.stage),
        "served": d.served,
        "bucket": d.bucket,
        "scorer_id": d.scorer_id,
        "band": d.band,
        "score": d.score,
        "action": str(d.action),
        "reasons": [str(r) for r in d.reasons],
        "route": d.route,
        "policy_id": d.policy_id,
        "policy_version": d.policy_version,
        "live_action": str(d.live_action) if d.live_action is not None else None,
        "live_reasons": [str(r) for r in d.live_reasons] if d.live_reasons is not None else None,
        "live_route": d.live_route,
        "decided_at": d.decided_at,
    }
