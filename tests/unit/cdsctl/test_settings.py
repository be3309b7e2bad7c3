"""Settings that are chosen from other settings when left unset."""

from __future__ import annotations

import pytest

from cdsctl.settings import Settings

PG = "postgresql+psycopg://cds@db:5432/cds"


def test_hook_calls_run_on_one_thread_unless_configured() -> None:
    # One thread records the calls queued behind it in one transaction; on SQLite more threads only interleave calls,
    # and on PostgreSQL, a call's rows going in with its batch's, one thread measured cheaper than two.
    assert Settings(database_url="").resolved_hook_threads == 1
    assert Settings(database_url="sqlite:///var/other.sqlite3").resolved_hook_threads == 1
    assert Settings(database_url=PG).resolved_hook_threads == 1


@pytest.mark.parametrize("url", ["", PG])
def test_a_configured_number_of_hook_threads_wins_on_either_database(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_HOOK_THREADS", "3")
    assert Settings(database_url=url).resolved_hook_threads == 3


def test_a_number_of_hook_threads_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_HOOK_THREADS", "0")
    with pytest.raises(ValueError, match="hook_threads"):
        Settings()
