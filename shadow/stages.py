"""A live candidate's stage (shadow → canary → live, and back; off after the kill switch) and the changes allowed.

Plain values and rules only: the store (store/candidates.py) persists them, the API (api/candidates.py) asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Stage(StrEnum):
    SHADOW = "shadow"  # evaluated on every live call, recorded, never shown
    CANARY = "canary"  # serves a sticky fraction of patients or units; shadow for the rest
    LIVE = "live"  # serves every call of its service
    OFF = "off"  # killed or withdrawn: not evaluated at all


class CandidateKind(StrEnum):
    """What a candidate changes against the service's live configuration."""

    THRESHOLD = "threshold"
    POLICY = "policy"
    MODEL = "model"


class BucketBy(StrEnum):
    """What a canary's sticky fraction is drawn over."""

    PATIENT = "patient"
    UNIT = "unit"


class CandidateAuditKind(StrEnum):
    CREATED = "candidate-created"
    STAGE_CHANGED = "candidate-stage-changed"
    KILLED = "candidate-killed"


class RefusalReason(StrEnum):
    """Why a stage change was refused: always a value the caller can act on."""

    NOT_ADJACENT = "not-adjacent"  # stages move one step at a time
    ANOTHER_SERVES = "another-candidate-serves"  # one canary or live candidate per service
    SAME_STAGE = "same-stage"
    BAD_FRACTION = "bad-fraction"


class StageChangeRefused(ValueError):  # noqa: N818 -- a refusal is the domain's word, with its reason as a value
    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CandidateNotFoundError(LookupError):
    pass


# Promotion and demotion one step at a time, so every candidate that serves all calls was a canary first, and
# every canary ran in shadow first. OFF is reached by the kill switch from anywhere, and left only back to shadow.
_NEXT: dict[Stage, frozenset[Stage]] = {
    Stage.SHADOW: frozenset({Stage.CANARY, Stage.OFF}),
    Stage.CANARY: frozenset({Stage.SHADOW, Stage.LIVE, Stage.OFF}),
    Stage.LIVE: frozenset({Stage.CANARY, Stage.OFF}),
    Stage.OFF: frozenset({Stage.SHADOW}),
}
SERVING = frozenset({Stage.CANARY, Stage.LIVE})
EVALUATED = frozenset({Stage.SHADOW, Stage.CANARY, Stage.LIVE})


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """A candidate as stored: what it is (spec, model version), where it stands, and how its canary buckets."""

    id: int
    service_id: str
    kind: CandidateKind
    # `POLICY[@THRESHOLD]`, as replay writes a candidate (shadow.candidates.parse_candidate).
    spec: str
    model_version: str | None
    stage: Stage
    fraction: float
    bucket_by: BucketBy
    salt: str
    created_by: str
    created_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class CandidateDraft:
    """What an informaticist submits; the store adds the id, the salt and the times."""

    service_id: str
    kind: CandidateKind
    spec: str
    model_version: str | None
    fraction: float
    bucket_by: BucketBy


@dataclass(frozen=True, slots=True)
class StageChange:
    """One entry of a candidate's history: who moved it, when, from where to where, and why."""

    candidate_id: int
    from_stage: Stage | None
    to_stage: Stage
    fraction: float
    actor: str
    comment: str
    at: datetime


def check_transition(current: Stage, target: Stage, *, others_serving: int, fraction: float) -> None:
    """Raise StageChangeRefused unless `current → target` is allowed; `others_serving` counts the service's other
    candidates in canary or live."""
    if current == target:
        raise StageChangeRefused(RefusalReason.SAME_STAGE, f"the candidate is already in {current}")
    if target not in _NEXT[current]:
        raise StageChangeRefused(RefusalReason.NOT_ADJACENT, f"{current} cannot move to {target} directly")
    if target in SERVING and others_serving:
        raise StageChangeRefused(
            RefusalReason.ANOTHER_SERVES, "another candidate of this service is in canary or live: move it first"
        )
    check_fraction(fraction)


def check_fraction(fraction: float) -> None:
    if not 0.0 < fraction <= 1.0:
        raise StageChangeRefused(RefusalReason.BAD_FRACTION, "a canary fraction lies in (0, 1]")
