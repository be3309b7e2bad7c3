"""The candidate store on SQLite and PostgreSQL: racing promotions leave one serving candidate, a kill is recorded
once, and the hot-path read sees a committed change at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Engine

from shadow.stages import BucketBy, CandidateDraft, CandidateKind, Stage, StageChangeRefused
from store.candidates import SqlCandidateStore
from store.repository import SqlUnitOfWork

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _draft(service: str, spec: str) -> CandidateDraft:
    return CandidateDraft(service, CandidateKind.POLICY, spec, None, 0.1, BucketBy.PATIENT)


def _promote(store: SqlCandidateStore, candidate_id: int, start: threading.Barrier, outcomes: list[str]) -> None:
    start.wait()
    try:
        store.change_stage(candidate_id, Stage.CANARY, actor="a", comment="go", at=T0)
        outcomes.append("moved")
    except StageChangeRefused as refused:
        outcomes.append(str(refused.reason))


def test_two_candidates_promoted_at_once_leave_exactly_one_serving(migrated_engine: Engine) -> None:
    store = SqlCandidateStore(migrated_engine)
    for round_ in range(5):
        service = f"svc-{round_}"
        ids = [store.create(_draft(service, spec), actor="a", comment="", at=T0).id for spec in ("x", "y")]
        outcomes: list[str] = []
        start = threading.Barrier(2)
        threads = [threading.Thread(target=_promote, args=(store, i, start, outcomes)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["another-candidate-serves", "moved"]
        assert [c.stage for c in store.evaluated(service)].count(Stage.CANARY) == 1


def test_a_kill_is_recorded_once_and_read_by_the_very_next_lookup(migrated_engine: Engine) -> None:
    store = SqlCandidateStore(migrated_engine)
    made = store.create(_draft("svc", "x"), actor="a", comment="", at=T0)
    store.change_stage(made.id, Stage.CANARY, actor="a", comment="go", at=T0)
    assert [c.stage for c in store.evaluated("svc")] == [Stage.CANARY]
    store.kill(made.id, actor="b", comment="stop", at=T0)
    assert store.evaluated("svc") == []
    assert store.kill(made.id, actor="b", comment="again", at=T0).stage is Stage.OFF
    assert [(h.from_stage, h.to_stage, h.actor) for h in store.history(made.id)] == [
        (None, Stage.SHADOW, "a"),
        (Stage.SHADOW, Stage.CANARY, "a"),
        (Stage.CANARY, Stage.OFF, "b"),
    ]
    with SqlUnitOfWork(migrated_engine) as uow:
        kinds = [r.kind for r in uow.repo.audit_records()]
        assert uow.repo.verify_audit_chain().ok
    assert kinds == ["candidate-created", "candidate-stage-changed", "candidate-killed"]
