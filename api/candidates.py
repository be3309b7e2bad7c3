"""Live candidates (shadow → canary → live, and the kill switch) for informaticists: parse, call
shadow.rollout, render. Every change is stored with its history and audited there."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.errors import HookRequestError
from api.responses import JSONBytes
from api.schemas import ErrorRead
from api.security.staff import InformaticistDep
from shadow.arms import CandidateInvalidError
from shadow.rollout import CandidateRollout, UnknownServiceError
from shadow.stages import (
    BucketBy,
    CandidateKind,
    CandidateNotFoundError,
    CandidateRecord,
    Stage,
    StageChange,
    StageChangeRefused,
)

router = APIRouter(tags=["candidates"])
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorRead} for code in (401, 403, 404, 409, 422, 503)}


def _rollout(request: Request) -> CandidateRollout:
    found: CandidateRollout | None = getattr(request.app.state, "candidates", None)
    if found is None:
        raise HookRequestError(503, "live candidates are not configured on this server")
    return found


RolloutDep = Annotated[CandidateRollout, Depends(_rollout)]


class CandidateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: str = Field(min_length=1, max_length=256, description="POLICY[@THRESHOLD], as replay writes a candidate")
    model_version: str | None = Field(default=None, max_length=32, description="another version of the model")
    fraction: float = Field(default=0.1, gt=0, le=1, description="the share a canary serves")
    bucket_by: BucketBy = BucketBy.PATIENT
    comment: str = Field(default="", max_length=2000)


class StageUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage
    comment: str = Field(min_length=1, max_length=2000, description="why: kept in the stage history")
    fraction: float | None = Field(default=None, gt=0, le=1)


class KillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class StageChangeRead(BaseModel):
    from_stage: Stage | None
    to_stage: Stage
    fraction: float
    actor: str
    comment: str
    at: datetime


class CandidateRead(BaseModel):
    id: int
    service_id: str
    kind: CandidateKind
    spec: str
    model_version: str | None
    stage: Stage
    fraction: float
    bucket_by: BucketBy
    created_by: str
    created_at: datetime
    changed_at: datetime
    history: list[StageChangeRead] | None = None


def _read(record: CandidateRecord, history: list[StageChange] | None = None) -> dict[str, Any]:
    body = CandidateRead(
        id=record.id,
        service_id=record.service_id,
        kind=record.kind,
        spec=record.spec,
        model_version=record.model_version,
        stage=record.stage,
        fraction=record.fraction,
        bucket_by=record.bucket_by,
        created_by=record.created_by,
        created_at=record.created_at,
        changed_at=record.changed_at,
        history=None
        if history is None
        else [
            StageChangeRead(
                from_stage=h.from_stage,
                to_stage=h.to_stage,
                fraction=h.fraction,
                actor=h.actor,
                comment=h.comment,
                at=h.at,
            )
            for h in history
        ],
    )
    read = body.model_dump(mode="json")
    if history is None:
        del read["history"]
    return read


def _refusals(exc: Exception) -> HookRequestError:
    if isinstance(exc, CandidateNotFoundError):
        return HookRequestError(404, "no such candidate")
    if isinstance(exc, UnknownServiceError):
        return HookRequestError(404, "no such service")
    if isinstance(exc, StageChangeRefused):
        return HookRequestError(409, f"{exc.reason}: {exc}")
    return HookRequestError(422, str(exc))


_REFUSED = (CandidateNotFoundError, UnknownServiceError, StageChangeRefused, CandidateInvalidError)


@router.post("/services/{service_id}/candidates", status_code=201, response_class=JSONBytes, responses=_ERRORS)
def propose_candidate(service_id: str, body: CandidateCreate, user: InformaticistDep, rollout: RolloutDep) -> JSONBytes:
    try:
        record = rollout.propose(
            service_id,
            spec=body.spec,
            model_version=body.model_version,
            fraction=body.fraction,
            bucket_by=body.bucket_by,
            actor=user.pseudonym,
            comment=body.comment,
        )
    except _REFUSED as exc:
        raise _refusals(exc) from None
    return JSONBytes(_read(record, []), status_code=201)


@router.post("/candidates/{candidate_id}/stage", response_class=JSONBytes, responses=_ERRORS)
def change_stage(candidate_id: int, body: StageUpdate, user: InformaticistDep, rollout: RolloutDep) -> JSONBytes:
    try:
        record = rollout.move(
            candidate_id, body.stage, actor=user.pseudonym, comment=body.comment, fraction=body.fraction
        )
    except _REFUSED as exc:
        raise _refusals(exc) from None
    return JSONBytes(_read(record))


@router.post("/candidates/{candidate_id}/kill", response_class=JSONBytes, responses=_ERRORS)
def kill_candidate(
    candidate_id: int, user: InformaticistDep, rollout: RolloutDep, body: KillRequest | None = None
) -> JSONBytes:
    """The kill switch: the candidate stops at once and the very next call is served by the live configuration."""
    try:
        record = rollout.kill(candidate_id, actor=user.pseudonym, comment=body.comment if body else "")
    except _REFUSED as exc:
        raise _refusals(exc) from None
    return JSONBytes(_read(record))


@router.get("/candidates", response_class=JSONBytes, responses=_ERRORS)
def list_candidates(
    user: InformaticistDep, rollout: RolloutDep, service_id: Annotated[str | None, Query(max_length=128)] = None
) -> JSONBytes:
    return JSONBytes({"candidates": [_read(r) for r in rollout.candidates(service_id)]})


@router.get("/candidates/{candidate_id}", response_class=JSONBytes, responses=_ERRORS)
def read_candidate(candidate_id: int, user: InformaticistDep, rollout: RolloutDep) -> JSONBytes:
    try:
        record, history = rollout.get(candidate_id)
    except _REFUSED as exc:
        raise _refusals(exc) from None
    return JSONBytes(_read(record, history))


@router.get("/candidates/{candidate_id}/comparison", response_class=JSONBytes, responses=_ERRORS)
def candidate_comparison(candidate_id: int, user: InformaticistDep, rollout: RolloutDep) -> JSONBytes:
    """How the candidate's decisions on live calls differed from what those calls served."""
    try:
        return JSONBytes(rollout.comparison(candidate_id))
    except _REFUSED as exc:
        raise _refusals(exc) from None
