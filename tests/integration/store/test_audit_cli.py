"""`cdsctl audit verify` on a real database: a clean chain passes; an edited, removed or reordered record is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from cdsctl.settings import get_settings
from store.audit_cli import app
from store.port import AuditEntry, UnitOfWork

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _append(uow: UnitOfWork, count: int) -> list[str]:
    hashes = []
    with uow:
        for n in range(count):
            entry = AuditEntry(
                actor="ehr:test",
                kind="hook-call",
                subject=f"call-{n}",
                at=START + timedelta(minutes=n),
                payload={"n": n},
            )
            hashes.append(uow.repo.append_audit(entry).hash)
        uow.commit()
    return hashes


def _run(database_url: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", "--database-url", database_url])
    return result.exit_code, result.output


def test_a_clean_chain_exits_zero_and_prints_the_count_and_head_hash(database_url: str, uow: UnitOfWork) -> None:
    hashes = _append(uow, 4)

    code, output = _run(database_url)

    assert code == 0, output
    assert "checked 4 audit records" in output
    assert f"head seq 4 hash {hashes[-1]}" in output


def test_an_empty_chain_verifies(database_url: str, uow: UnitOfWork) -> None:
    code, output = _run(database_url)

    assert (code, "checked 0 audit records" in output) == (0, True)


def test_verify_reads_the_configured_database_by_default(
    database_url: str, uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = _append(uow, 2)
    monkeypatch.setenv("CDS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["verify"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert f"head seq 2 hash {hashes[-1]}" in result.output


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "fault"),
    [
        # Raw SQL, as an attacker with database access would: the ORM's append-only guard is not in the way.
        (["UPDATE audit_log SET payload = '{\"n\": 99}' WHERE seq = 3"], 3, "edited"),
        (["DELETE FROM audit_log WHERE seq = 2"], 2, "removed"),
        (
            # Records 2 and 3 swap places (through a spare number, as seq is the primary key).
            [
                "UPDATE audit_log SET seq = -1 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = -1",
            ],
            2,
            "reordered",
        ),
    ],
    ids=["edited", "removed", "reordered"],
)
def test_a_tampered_chain_exits_one_naming_the_seq_and_the_fault(
    database_url: str, uow: UnitOfWork, migrated_engine: Engine, tamper: list[str], bad_seq: int, fault: str
) -> None:
    hashes = _append(uow, 5)
    with migrated_engine.begin() as connection:
        for statement in tamper:
            connection.execute(text(statement))

    code, output = _run(database_url)

    assert code == 1
    assert f"audit chain broken at seq {bad_seq}: record {fault}" in output
    # The last record still trusted is the one before the fault.
    assert f"last good record: seq {bad_seq - 1} hash {hashes[bad_seq - 2]}" in output


def test_the_report_never_prints_a_records_payload(database_url: str, uow: UnitOfWork, migrated_engine: Engine) -> None:
    _append(uow, 2)
    with migrated_engine.begin() as connection:
        connection.execute(text('UPDATE audit_log SET payload = \'{"patient": "Jane Q Public"}\' WHERE seq = 1'))

    code, output = _run(database_url)

    assert code == 1
    assert "Jane Q Public" not in output
