"""Policy versions in the database: stored once, never edited, and exactly one active per policy even when two
activations race."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from policy.document import BUNDLED_DIR
from policy.versions import PolicyVersion, VersionRefusedError, new_version
from store.db import make_session_factory
from store.policy_versions import SqlPolicyVersions
from store.tables import PolicyVersionRow

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TEXT = (BUNDLED_DIR / "deterioration.yaml").read_text(encoding="utf-8")


def _version(number: str, dedup: str = "4h") -> PolicyVersion:
    text = TEXT.replace('version: "1.0.0"', f'version: "{number}"').replace("dedup: 4h", f"dedup: {dedup}")
    return new_version(text, author="staff:abc", comment=f"version {number}", now=NOW)


def _store(engine: Engine, *versions: PolicyVersion) -> None:
    with Session(engine) as session, session.begin():
        for version in versions:
            SqlPolicyVersions(session).add(version)


def test_the_same_content_again_is_not_stored_twice_and_new_content_needs_a_new_number(
    migrated_engine: Engine,
) -> None:
    _store(migrated_engine, _version("1.0.0"))

    with Session(migrated_engine) as session, session.begin():
        _, created = SqlPolicyVersions(session).add(_version("1.0.0"))
        with pytest.raises(VersionRefusedError):
            SqlPolicyVersions(session).add(_version("1.0.0", dedup="2h"))
        history = SqlPolicyVersions(session).history("deterioration")

    assert created is False
    assert [stored.version.version for stored in history] == ["1.0.0"]
    assert history[0].version.text == _version("1.0.0").text


def test_activating_moves_the_one_active_flag(migrated_engine: Engine) -> None:
    _store(migrated_engine, _version("1.0.0"), _version("1.1.0", dedup="2h"))

    with Session(migrated_engine) as session, session.begin():
        _, before = SqlPolicyVersions(session).activate("deterioration", "1.0.0", now=NOW)
    with Session(migrated_engine) as session, session.begin():
        _, replaced = SqlPolicyVersions(session).activate("deterioration", "1.1.0", now=NOW)
    with Session(migrated_engine) as session:
        active = SqlPolicyVersions(session).active("deterioration")

    assert before is None
    assert replaced is not None and replaced.version.version == "1.0.0"
    assert active is not None and active.version.version == "1.1.0"


def test_two_racing_activations_leave_exactly_one_active_version(migrated_engine: Engine) -> None:
    numbers = [f"1.{n}.0" for n in range(6)]
    _store(migrated_engine, *(_version(n, dedup=f"{n[2]}h") for n in numbers))
    sessions = make_session_factory(migrated_engine)
    errors: list[BaseException] = []
    start = threading.Barrier(len(numbers))

    def activate(number: str) -> None:
        try:
            start.wait()
            with sessions() as session, session.begin():
                SqlPolicyVersions(session).activate("deterioration", number, now=NOW)
        except BaseException as exc:  # collected and asserted below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=activate, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with Session(migrated_engine) as session:
        active = session.scalar(
            select(func.count()).select_from(PolicyVersionRow).where(PolicyVersionRow.active.is_(True))
        )
    assert errors == []
    assert active == 1


def test_an_unknown_version_cannot_be_activated(migrated_engine: Engine) -> None:
    _store(migrated_engine, _version("1.0.0"))

    with Session(migrated_engine) as session, session.begin(), pytest.raises(LookupError):
        SqlPolicyVersions(session).activate("deterioration", "9.9.9", now=NOW)
