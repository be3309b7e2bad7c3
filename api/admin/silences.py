"""The silences API: informaticists mute matching alerts for a time, with a comment, and end silences early.
Silences are policy events, so the live hook path honours them from the next call on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.admin.schemas import SilenceCreate, SilenceRead
from api.admin.service import ConflictError, NotFoundError, SilenceAdmin
from api.errors import HookRequestError
from api.schemas import ErrorRead
from api.security.staff import InformaticistDep
from policy.silences import SilenceRefusedError, SilenceStatus

APP_STATE_KEY = "silence_admin"

router = APIRouter(
    prefix="/silences",
    tags=["admin"],
    responses={401: {"model": ErrorRead}, 403: {"model": ErrorRead}},
)


def _admin(request: Request) -> SilenceAdmin:
    admin: SilenceAdmin | None = getattr(request.app.state, APP_STATE_KEY, None)
    if admin is None:
        raise HookRequestError(503, "the silences API is not wired in this process")
    return admin


SilenceAdminDep = Annotated[SilenceAdmin, Depends(_admin)]


@router.post("", response_model=SilenceRead, status_code=201, responses={400: {"model": ErrorRead}})
def create_silence(body: SilenceCreate, user: InformaticistDep, admin: SilenceAdminDep) -> SilenceRead:
    try:
        record = admin.create(
            match=body.match,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            author=user.pseudonym,
            comment=body.comment,
            patient=body.patient_key,
            unit_id=body.unit_id,
        )
    except SilenceRefusedError as exc:
        raise HookRequestError(400, str(exc)) from None
    return SilenceRead.of(record, admin.now())


@router.get("", response_model=list[SilenceRead])
def list_silences(
    _: InformaticistDep,
    admin: SilenceAdminDep,
    status: Annotated[SilenceStatus | None, Query(description="Only silences in this state now.")] = None,
) -> list[SilenceRead]:
    now = admin.now()
    return [SilenceRead.of(record, now) for record in admin.silences(status)]


@router.post(
    "/{silence_id}/expire",
    response_model=SilenceRead,
    responses={404: {"model": ErrorRead}, 409: {"model": ErrorRead}},
)
def expire_silence(silence_id: str, user: InformaticistDep, admin: SilenceAdminDep) -> SilenceRead:
    try:
        record = admin.expire(silence_id, actor=user.pseudonym)
    except NotFoundError as exc:
        raise HookRequestError(404, str(exc)) from None
    except ConflictError as exc:
        raise HookRequestError(409, str(exc)) from None
    return SilenceRead.of(record, admin.now())
