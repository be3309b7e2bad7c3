"""Clinicians' actions on cards (POST /cards/{uuid}/actions) and the feedback report (GET /feedback/report): parse,
call feedback/, render."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.errors import HookRequestError
from api.metrics import FEEDBACK
from api.pipeline import HookPipeline
from api.responses import JSONBytes
from api.schemas import ErrorRead
from api.security.staff import ClinicianDep, InformaticistDep, Role, StaffUser
from feedback.action_service import record_action
from feedback.actions import ActionError, ActionKind, ActionStatus, ClinicianAction, DismissReason
from feedback.report import build_report
from feedback.report_render import render_csv, render_html
from store.feedback_store import action_unit_of_work, load_feedback_frames

router = APIRouter()


def _pipeline(request: Request) -> HookPipeline:
    pipeline: HookPipeline = request.app.state.pipeline
    return pipeline


PipelineDep = Annotated[HookPipeline, Depends(_pipeline)]


class ActionCreate(BaseModel):
    """One clinician's action on a card. `at` is when the clinician acted: it orders actions, not their arrival."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    action: ActionKind
    at: AwareDatetime
    reason: DismissReason | None = Field(default=None, description="required for dismiss, refused otherwise")
    comment: str | None = Field(default=None, max_length=2000, description="stored, never logged or audited")
    until: AwareDatetime | None = Field(default=None, description="required for defer: when the alert may return")
    escalate_to: str | None = Field(
        default=None, alias="escalateTo", min_length=1, max_length=64, description="required for escalate: a role"
    )


class ActionRead(BaseModel):
    card: str
    action: ActionKind
    status: ActionStatus
    events: list[str]


class ReportFormat(StrEnum):
    JSON = "json"
    HTML = "html"
    CSV = "csv"


def _acting_role(user: StaffUser) -> str:
    # The role the action was taken in: clinician when held, else the role that implies it.
    return Role.CLINICIAN.value if Role.CLINICIAN in user.roles else min(r.value for r in user.roles)


@router.post(
    "/cards/{card_uuid}/actions",
    response_model=ActionRead,
    responses={status: {"model": ErrorRead} for status in (400, 401, 403, 404)},
)
async def post_card_action(
    # Our card uuids are 36 characters; a longer one cannot be ours, and would not fit the column it is kept in.
    card_uuid: Annotated[str, Path(min_length=1, max_length=36)],
    body: ActionCreate,
    user: ClinicianDep,
    pipeline: PipelineDep,
) -> ActionRead:
    try:
        action = ClinicianAction(
            card_uuid=card_uuid,
            action=body.action,
            at=body.at,
            user_pseudonym=user.pseudonym,
            user_role=_acting_role(user),
            reason=body.reason,
            comment=body.comment,
            until=body.until,
            escalate_to=body.escalate_to,
        )
    except ActionError as exc:
        raise HookRequestError(400, str(exc)) from exc
    receipt = await run_in_threadpool(
        record_action, action, unit_of_work=action_unit_of_work(pipeline.unit_of_work), now=datetime.now(UTC)
    )
    FEEDBACK.labels("card-action", receipt.action).inc()
    if receipt.status is ActionStatus.UNKNOWN_CARD:
        # Kept apart for the feedback report; the caller is told plainly that the card is not ours.
        raise HookRequestError(404, f"no card with uuid {card_uuid} was sent; the action is kept for review")
    return ActionRead(card=card_uuid, action=receipt.action, status=receipt.status, events=list(receipt.events))


@router.get(
    "/feedback/report",
    responses={
        200: {"content": {"text/html": {}, "text/csv": {}}},
        401: {"model": ErrorRead},
        403: {"model": ErrorRead},
    },
)
def get_feedback_report(
    user: InformaticistDep,
    pipeline: PipelineDep,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    format: Annotated[ReportFormat, Query()] = ReportFormat.JSON,
) -> Response:
    # A plain `def`: FastAPI runs it in its thread pool, so the database read and the analysis stay off the loop.
    with pipeline.unit_of_work() as uow:
        frames = load_feedback_frames(uow, since=since, until=until)
    report = build_report(frames, since=since, until=until)
    if format is ReportFormat.HTML:
        return Response(render_html(report), media_type="text/html; charset=utf-8")
    if format is ReportFormat.CSV:
        return Response(render_csv(report), media_type="text/csv; charset=utf-8")
    return JSONBytes(report.to_dict())
