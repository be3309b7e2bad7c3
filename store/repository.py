"""The SQLAlchemy adapter of the persistence port: one session per unit of work, one transaction per session."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from functools import cache
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine, Insert, Row, Table, bindparam, event, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from store import audit
from store.db import make_session_factory
from store.documents import (
    card_uuid,
    explanation_document,
    features_document,
    feedback_audit_payload,
    hook_call_audit_payload,
    plain_json,
)
from store.driver import cursor_of, driver_of, held_for_transaction, hold_for_transaction, insert_rows
from store.pending import PendingCall, waiting_rows, write_pending
from store.port import (
    GENESIS_HASH,
    AuditEntry,
    AuditKind,
    AuditRecord,
    ChainCheck,
    Feedback,
    HookCall,
    RecordedHookCall,
    StoredCard,
)
from store.tables import AuditRow, CardRow, DecisionRow, FeedbackRow, HookCallRow, RiskOutputRow

# One transaction-scoped advisory lock serialises appends to the audit chain on PostgreSQL: the head is read
# and extended while holding it, and it is released only at commit, when the new head is visible to the next.
AUDIT_CHAIN_LOCK = int.from_bytes(hashlib.sha256(b"cds.audit_log.chain").digest()[:8], "big", signed=True)
_VERIFY_BATCH = 1000

_AUDIT: Table = AuditRow.__table__  # type: ignore[assignment]
_HOOK_CALLS: Table = HookCallRow.__table__  # type: ignore[assignment]
_FEEDBACK: Table = FeedbackRow.__table__  # type: ignore[assignment]
# Where a hook call's pending rows (store.pending) wait for the policy state to tag its events with their decisions
# (same session), with whether the decisions' traces go in with them.
DECISION_IDS = "cds.hook_call.decision_ids"

# The hot path's statements, as text for the session's DB-API cursor (store.driver).
_AUDIT_HEAD = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
_AUDIT_HEAD_KEY = "cds.audit_log.head"  # session.info: (transaction, (seq, hash)) of the last append in it
# session.info: the audit entries of the hook calls recorded in the transaction, chained just before it commits.
_PENDING_AUDIT = "cds.audit_log.pending"
_AUDIT_LOCK = "SELECT pg_advisory_xact_lock(" + str(AUDIT_CHAIN_LOCK) + ")"
_AUDIT_COLUMNS = ("seq", "at", "actor", "kind", "subject", "payload", "prev_hash", "hash")
_HOOK_CALL_ONCE = (
    "INSERT INTO hook_calls (hook_instance, service_id, hook, actor, patient_key, encounter_id, response, received_at)"
    " VALUES (:hook_instance, :service_id, :hook, :actor, :patient_key, :encounter_id, :response, :received_at)"
    " ON CONFLICT (hook_instance) DO NOTHING RETURNING id"
)
_HOOK_CALL_RESPONSE = select(_HOOK_CALLS.c.response).where(_HOOK_CALLS.c.hook_instance == bindparam("hook_instance"))
# The stored calls among a batch's hookInstances, with their responses (PostgreSQL).
_STORED_RESPONSES = "SELECT hook_instance, response FROM hook_calls WHERE hook_instance = ANY(%s)"
# session.info: (transaction, _Expected) of the batch whose hookInstances were looked up (expect_hook_calls).
_EXPECTED = "cds.hook_calls.expected"


class _Expected:
    """A batch's hookInstances as looked up before its calls are recorded: the responses of those already stored, and
    of those recorded since in this transaction (a hookInstance sent twice in one batch)."""

    __slots__ = ("names", "recorded", "stored")

    def __init__(self, names: set[str], stored: dict[str, Any]) -> None:
        self.names = names
        self.stored = stored
        self.recorded: dict[str, dict[str, Any]] = {}


class SqlRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def expect_hook_calls(self, hook_instances: Collection[str]) -> None:
        """Look up, in one statement, which of the hookInstances a batch is about to record are stored already
        (retries). Each of the others' own row then waits with the call's other rows (store.pending) instead of
        going in at once, a statement a call; a hookInstance another transaction records meanwhile fails the write,
        and the batch is recorded again call by call. PostgreSQL only: on SQLite a statement is no round trip, and
        there the lookup cost more than the statements it saved (4 alternating pairs, 2026-12-06)."""
        session = self._session
        driver = driver_of(session)
        if not driver.postgres:
            return
        cursor = cursor_of(session)  # first: it begins the transaction the lookup is kept for
        names = set(hook_instances)
        try:
            cursor.execute(_STORED_RESPONSES, (list(names),))
            stored = {name: driver.read_document(response) for name, response in cursor.fetchall()}
        finally:
            cursor.close()
        hold_for_transaction(session, _EXPECTED, _Expected(names, stored))

    def _expected(self, hook_instance: str) -> _Expected | None:
        expected: _Expected | None = held_for_transaction(self._session, _EXPECTED)
        return expected if expected is not None and hook_instance in expected.names else None

    def record_hook_call(self, call: HookCall) -> RecordedHookCall:
        response = plain_json(call.response)
        expected = self._expected(call.hook_instance)
        if expected is not None:
            previous = expected.stored.get(call.hook_instance)
            if previous is None:
                previous = expected.recorded.get(call.hook_instance)
            if previous is not None:
                return RecordedHookCall(response=previous, created=False)
            expected.recorded[call.hook_instance] = response
            waiting_rows(self._session).hook_calls.append(
                (
                    *(call.hook_instance, call.service_id, call.hook, call.actor, call.patient_key),
                    *(call.encounter_id, response, call.received_at),
                )
            )
            return self._record_rows(call, response)
        driver = driver_of(self._session)
        cursor = cursor_of(self._session)
        try:
            # INSERT ... ON CONFLICT DO NOTHING: unlike catching IntegrityError this leaves a PostgreSQL
            # transaction usable, and it waits for a concurrent insert of the same hookInstance to settle.
            cursor.execute(
                driver.sql(_HOOK_CALL_ONCE),
                {
                    "hook_instance": call.hook_instance,
                    "service_id": call.service_id,
                    "hook": call.hook,
                    "actor": call.actor,
                    "patient_key": call.patient_key,
                    "encounter_id": call.encounter_id,
                    "response": driver.document(response),
                    "received_at": driver.instant(call.received_at),
                },
            )
            if cursor.fetchone() is None:
                # Another call with this hookInstance got there first (possibly concurrently): answer as it did.
                previous = self.hook_call_response(call.hook_instance)
                if previous is None:
                    raise RuntimeError("hook call conflicted on its hookInstance, yet no stored call was found")
                return RecordedHookCall(response=previous, created=False)
        finally:
            cursor.close()
        return self._record_rows(call, response)

    def _record_rows(self, call: HookCall, response: dict[str, Any]) -> RecordedHookCall:
        # The call's other rows wait on the session and go in with the other calls of its transaction (store.pending).
        pending = PendingCall(
            [
                (
                    call.hook_instance,
                    output.scorer_id,
                    output.scorer_version,
                    output.score,
                    output.band,
                    output.partial,
                    list(output.missing),
                    explanation_document(output),
                    features_document(output),
                    output.input_hash,
                    output.as_of,
                    call.patient_key,
                    call.encounter_id,
                    call.received_at,
                )
                for output in (result.output for result in call.results)
            ],
            [
                (
                    str(decision.action),
                    [str(reason) for reason in decision.reasons],
                    decision.policy_id,
                    decision.policy_version,
                    decision.route,
                    decision.inputs_hash,
                    decision.decided_at,
                    decision.delay_until,
                    result.trace,
                    None if result.trace is None else plain_json(decision.escalation),
                )
                for result, decision in zip(call.results, (r.decision for r in call.results), strict=True)
            ],
        )
        carded = [(index, result.card) for index, result in enumerate(call.results) if result.card is not None]
        pending.cards = [
            (index, (card_uuid(card), call.hook_instance, call.service_id, body, call.received_at))
            for (index, card), body in zip(carded, _card_bodies(call, response), strict=True)
        ]
        waiting_rows(self._session).add_call(pending)
        # The call's pending rows, so that the policy state tags its events with their decisions, and whether the
        # decisions' traces went in with them.
        traced = all(result.trace is not None for result in call.results)
        self._session.info[DECISION_IDS] = (call.hook_instance, pending, traced)
        if self._session.get_nested_transaction() is not None:
            write_pending(self._session)  # a savepoint holds no waiting rows (store.pending)
        # Chained when the transaction commits (see _append_pending_audit), with any other calls recorded in it.
        self._session.info.setdefault(_PENDING_AUDIT, []).append(
            AuditEntry(
                actor=call.actor,
                kind=AuditKind.HOOK_CALL,
                subject=f"hook:{call.hook_instance}",
                at=call.received_at,
                payload=hook_call_audit_payload(call),
            )
        )
        return RecordedHookCall(response=response, created=True)

    def hook_call_response(self, hook_instance: str) -> dict[str, Any] | None:
        return self._session.scalar(_HOOK_CALL_RESPONSE, {"hook_instance": hook_instance})

    def find_card(self, uuid: str) -> StoredCard | None:
        query = (
            select(CardRow, DecisionRow, RiskOutputRow)
            .join(DecisionRow, CardRow.decision_id == DecisionRow.id)
            .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
            .where(CardRow.uuid == uuid)
        )
        found = self._session.execute(query).one_or_none()
        if found is None:
            return None
        card, decision, output = found
        return StoredCard(
            uuid=card.uuid,
            hook_instance=card.hook_instance,
            service_id=card.service_id,
            body=card.body,
            created_at=card.created_at,
            action=decision.action,
            reasons=tuple(decision.reasons),
            policy_id=decision.policy_id,
            policy_version=decision.policy_version,
            route=decision.route,
            scorer_id=output.scorer_id,
            scorer_version=output.scorer_version,
            band=output.band,
            score=output.score,
            patient_key=output.patient_key,
            encounter_id=output.encounter_id,
        )

    def record_feedback(self, feedback: Feedback) -> bool:
        inserted = self._insert_once(
            _FEEDBACK,
            ("card_uuid", "outcome", "outcome_at"),
            card_uuid=feedback.card_uuid,
            outcome=str(feedback.outcome),
            outcome_at=feedback.outcome_at,
            accepted_suggestions=plain_json(feedback.accepted_suggestions),
            override_reason=plain_json(feedback.override_reason),
            user_pseudonym=feedback.user_pseudonym,
            received_at=feedback.received_at,
        )
        if inserted:
            self.append_audit(
                AuditEntry(
                    actor=feedback.actor,
                    kind=AuditKind.FEEDBACK,
                    subject=f"card:{feedback.card_uuid}",
                    at=feedback.received_at,
                    payload=feedback_audit_payload(feedback),
                )
            )
        return inserted

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        """Chain `entry` onto the audit log now (after any entries of this transaction still waiting for its commit)."""
        return self._append_audit([*self._session.info.pop(_PENDING_AUDIT, ()), entry])[-1]

    def _append_audit(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        driver = driver_of(self._session)
        cursor = cursor_of(self._session)
        session = self._session
        # The chain's head as this transaction left it, when it has appended before: the lock is still held and
        # nobody else can have moved the head. Kept only outside savepoints, whose rollback could take the appended
        # records back with them.
        transaction, nested = session.get_transaction(), session.get_nested_transaction()
        known = session.info.get(_AUDIT_HEAD_KEY)
        records: list[AuditRecord] = []
        try:
            if known is not None and known[0] is transaction and nested is None:
                head = known[1]
            else:
                if driver.postgres:
                    cursor.execute(_AUDIT_LOCK)
                # On SQLite the transaction began IMMEDIATE (see store.db), so it already holds the only writer lock.
                cursor.execute(_AUDIT_HEAD)
                head = cursor.fetchone()
            for entry in entries:
                record = audit.extend(entry, 0, GENESIS_HASH) if head is None else audit.extend(entry, *head)
                records.append(record)
                head = (record.seq, record.hash)
            rows = [
                (
                    *(record.seq, record.at, record.actor, record.kind, record.subject),
                    *(record.payload, record.prev_hash, record.hash),
                )
                for record in records
            ]
            session.info.pop(_AUDIT_HEAD_KEY, None)
            insert_rows(cursor, driver, _AUDIT, _AUDIT_COLUMNS, rows)
            if nested is None:
                session.info[_AUDIT_HEAD_KEY] = (transaction, head)
        finally:
            cursor.close()
        return records

    def audit_records(self, after_seq: int = 0, limit: int | None = None) -> list[AuditRecord]:
        query = select(_AUDIT).where(_AUDIT.c.seq > after_seq).order_by(_AUDIT.c.seq).limit(limit)
        return [_audit_record(row) for row in self._session.execute(query)]

    def verify_audit_chain(self) -> ChainCheck:
        return audit.verify_chain(self._stream_audit(), self._audit_hash_exists)

    def _stream_audit(self) -> Iterator[AuditRecord]:
        # Batches by key rather than one long cursor: constant memory on any size of log, on both backends.
        after = 0
        while batch := self.audit_records(after_seq=after, limit=_VERIFY_BATCH):
            yield from batch
            after = batch[-1].seq

    def _audit_hash_exists(self, digest: str) -> bool:
        return bool(self._session.scalar(select(exists().where(_AUDIT.c.hash == digest))))

    def _insert_once(self, table: Table, key: tuple[str, ...], **values: Any) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING: True when the row was new. Unlike catching IntegrityError this
        leaves a PostgreSQL transaction usable, and it waits for a concurrent insert of the same key to settle."""
        statement = _insert_once_statement(self._session.get_bind().dialect.name, table, key)
        return self._session.execute(statement, values).first() is not None


def _card_bodies(call: HookCall, response: Any) -> list[Any]:
    """The stored bodies of the call's cards, in results order. A response that lists exactly those card objects (as
    the pipeline's does) already holds plain copies of them; copying each card once more would give equal ones."""
    cards = [result.card for result in call.results if result.card is not None]
    listed = call.response.get("cards") if isinstance(call.response, Mapping) else None
    if (
        isinstance(listed, list | tuple)
        and len(listed) == len(cards)
        and all(a is b for a, b in zip(listed, cards, strict=True))
    ):
        return list(response["cards"])
    return [plain_json(card) for card in cards]


@cache
def _insert_once_statement(dialect: str, table: Table, key: tuple[str, ...]) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING says reliably whether a row went in; rowcount is not dependable across drivers here.
    return insert(table).on_conflict_do_nothing(index_elements=list(key)).returning(table.c.id)


@cache
def _returning_id(table: Table) -> Insert:
    return table.insert().returning(table.c.id)


@cache
def _returning_ids_in_order(table: Table) -> Insert:
    return table.insert().returning(table.c.id, sort_by_parameter_order=True)


def _audit_record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        subject=row.subject,
        payload=row.payload,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class SqlUnitOfWork:
    """A unit of work over a session factory; each `with` block is a fresh session and transaction."""

    repo: SqlRepository

    def __init__(self, target: Engine | sessionmaker[Session]) -> None:
        self._factory = make_session_factory(target) if isinstance(target, Engine) else target
        self._session: Session | None = None

    def __enter__(self) -> Self:
        self._session = self._factory()
        self.repo = SqlRepository(self._session)
        return self

    def prepare_batch(self, *, patient_keys: Collection[str] = (), hook_instances: Collection[str] = ()) -> None:
        """Before a batch's calls are recorded: their hookInstances looked up together (a lone call is recorded at
        once, as before: there is no statement to save)."""
        if len(hook_instances) > 1:
            self.repo.expect_hook_calls(hook_instances)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self._require_session()
        try:
            session.rollback()  # a no-op after commit; discards anything left uncommitted
        finally:
            session.close()
            # What the transaction kept on the session (its waiting rows, reads, the audit head) is held in a
            # reference cycle through the session's transaction, which only the cyclic collector would free: dropped
            # here, a batch's rows go as the batch ends, not in one long collection many batches later.
            session.info.clear()
            self._session = None

    def commit(self) -> None:
        self._require_session().commit()

    def rollback(self) -> None:
        self._require_session().rollback()

    def _require_session(self) -> Session:
        if self._session is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._session


@event.listens_for(Session, "before_commit")
def _append_pending_audit(session: Session) -> None:
    """The audit records of the hook calls a transaction recorded, chained onto the log as it commits, in one
    statement: on PostgreSQL the chain's lock is then held from here to the commit only, not while the calls'
    other rows are written (a batch of calls would otherwise hold it throughout, and every other worker with it)."""
    # The calls' waiting rows first (store.pending), then their audit records.
    write_pending(session)
    pending = session.info.pop(_PENDING_AUDIT, None)
    if pending:
        SqlRepository(session)._append_audit(pending)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_audit(session: Session, _previous: Any) -> None:
    # The calls they describe were rolled back with the transaction.
    if not session.in_transaction():
        session.info.pop(_PENDING_AUDIT, None)
    # A rollback (a savepoint's too) may take back calls recorded since the lookup: later calls go in at once.
    session.info.pop(_EXPECTED, None)
