"""The in-memory fake keeps the persistence contract, so unit tests of services can rely on it."""

from __future__ import annotations

import pytest

from store.memory import InMemoryUnitOfWork
from store.port import UnitOfWork
from tests.unit.store import builders
from tests.unit.store.contract import RepositoryContract


class TestInMemoryRepository(RepositoryContract):
    @pytest.fixture
    def uow(self) -> UnitOfWork:
        # Typed as the port, so mypy checks that the fake really implements it.
        return InMemoryUnitOfWork()


def test_the_fake_counts_commits_so_services_can_be_checked_for_committing() -> None:
    uow = InMemoryUnitOfWork()
    with uow:
        uow.repo.record_hook_call(builders.hook_call())
        uow.commit()
    assert uow.commits == 1
    assert "hook-1" in uow.state.responses


def test_tampering_with_the_fakes_log_is_caught_by_verification() -> None:
    uow = InMemoryUnitOfWork()
    with uow:
        uow.repo.record_hook_call(builders.hook_call())
        uow.repo.record_feedback(builders.feedback())
        uow.commit()
    del uow.state.audit_log[0]
    with uow:
        check = uow.repo.verify_audit_chain()
    assert (check.bad_seq, check.fault) == (1, "removed")
