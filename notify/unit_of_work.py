"""The SQL unit of work with timers and outbox beside the repository: one session, so a business change, the timers
it arms and the messages it sends commit or roll back together."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notify.port import Clock, system_clock
from store.db import make_session_factory
from store.outbox import SqlOutbox
from store.repository import SqlRepository
from store.timers import SqlTimers


class SqlNotifyUnitOfWork:
    """Like `store.repository.SqlUnitOfWork`, plus `timers` and `outbox`; `session` is for the notify adapters."""

    repo: SqlRepository
    timers: SqlTimers
    outbox: SqlOutbox

    def __init__(self, target: Engine | sessionmaker[Session], *, clock: Clock = system_clock) -> None:
        self._factory = make_session_factory(target) if isinstance(target, Engine) else target
        self._clock = clock
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._session

    def __enter__(self) -> Self:
        self._session = self._factory()
        self.repo = SqlRepository(self._session)
        self.timers = SqlTimers(self._session, self._clock)
        self.outbox = SqlOutbox(self._session, self._clock)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self.session
        try:
            session.rollback()  # a no-op after commit; discards anything left uncommitted
        finally:
            session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
