"""The policies API: informaticists validate, store, compare and activate policy versions. Thin routes over
`PolicyAdmin`; every change is audited with the staff member's pseudonym as its actor."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.admin.schemas import (
    PolicyActivationRead,
    PolicyDiffRead,
    PolicyRead,
    PolicyRefusedRead,
    PolicyValidate,
    PolicyValidationRead,
    PolicyVersionCreate,
    PolicyVersionRead,
    PolicyVersionSummaryRead,
)
from api.admin.service import NotFoundError, PolicyAdmin
from api.errors import HookRequestError, error_body
from api.responses import JSONBytes
from api.schemas import ErrorRead
from api.security.staff import InformaticistDep
from policy.document import PolicyValidationError
from policy.versions import VersionRefusedError

APP_STATE_KEY = "policy_admin"

router = APIRouter(
    prefix="/policies",
    tags=["admin"],
    responses={401: {"model": ErrorRead}, 403: {"model": ErrorRead}},
)


def _admin(request: Request) -> PolicyAdmin:
    admin: PolicyAdmin | None = getattr(request.app.state, APP_STATE_KEY, None)
    if admin is None:
        raise HookRequestError(503, "the policies API is not wired in this process")
    return admin


PolicyAdminDep = Annotated[PolicyAdmin, Depends(_admin)]


def _refused(exc: PolicyValidationError) -> JSONBytes:
    body: dict[str, Any] = {**error_body(400, "the policy document does not validate"), "errors": exc.errors}
    return JSONBytes(body, status_code=400)


@router.get("", response_model=list[PolicyRead])
def list_policies(_: InformaticistDep, admin: PolicyAdminDep) -> list[PolicyRead]:
    return [PolicyRead(**asdict(summary)) for summary in admin.policies()]


@router.post("/validate", response_model=PolicyValidationRead)
def validate_policy(body: PolicyValidate, _: InformaticistDep, admin: PolicyAdminDep) -> PolicyValidationRead:
    try:
        document = admin.validate(body.text)
    except PolicyValidationError as exc:
        return PolicyValidationRead(valid=False, errors=exc.errors)
    return PolicyValidationRead(
        valid=True, errors=[], policy_id=document.id, version=document.version, content_hash=document.content_hash()
    )


@router.get(
    "/{policy_id}/versions", response_model=list[PolicyVersionSummaryRead], responses={404: {"model": ErrorRead}}
)
def list_versions(policy_id: str, _: InformaticistDep, admin: PolicyAdminDep) -> list[PolicyVersionSummaryRead]:
    try:
        return [PolicyVersionSummaryRead.of(stored) for stored in admin.history(policy_id)]
    except NotFoundError as exc:
        raise HookRequestError(404, str(exc)) from None


@router.post(
    "/{policy_id}/versions",
    response_model=PolicyVersionRead,
    status_code=201,
    responses={
        200: {"model": PolicyVersionRead, "description": "The same content was stored before: nothing changed."},
        400: {"model": PolicyRefusedRead},
        409: {"model": ErrorRead},
    },
)
def create_version(
    policy_id: str, body: PolicyVersionCreate, user: InformaticistDep, admin: PolicyAdminDep, response: Response
) -> Any:
    try:
        stored, created = admin.create_version(policy_id, body.text, author=user.pseudonym, comment=body.comment)
    except PolicyValidationError as exc:
        return _refused(exc)
    except VersionRefusedError as exc:
        raise HookRequestError(409, str(exc)) from None
    if not created:
        response.status_code = 200
    return PolicyVersionRead.of(stored)


@router.get("/{policy_id}/versions/{version}", response_model=PolicyVersionRead, responses={404: {"model": ErrorRead}})
def get_version(policy_id: str, version: str, _: InformaticistDep, admin: PolicyAdminDep) -> PolicyVersionRead:
    try:
        return PolicyVersionRead.of(admin.version(policy_id, version))
    except NotFoundError as exc:
        raise HookRequestError(404, str(exc)) from None


@router.post(
    "/{policy_id}/versions/{version}/activate",
    response_model=PolicyActivationRead,
    responses={404: {"model": ErrorRead}},
)
def activate_version(
    policy_id: str, version: str, user: InformaticistDep, admin: PolicyAdminDep
) -> PolicyActivationRead:
    try:
        activated, previous = admin.activate(policy_id, version, actor=user.pseudonym)
    except NotFoundError as exc:
        raise HookRequestError(404, str(exc)) from None
    return PolicyActivationRead(
        policy_id=policy_id,
        version=activated.version.version,
        activated_at=activated.activated_at,
        previous_version=None if previous is None else previous.version.version,
    )


@router.get("/{policy_id}/diff", response_model=PolicyDiffRead, responses={404: {"model": ErrorRead}})
def diff_versions(
    policy_id: str,
    _: InformaticistDep,
    admin: PolicyAdminDep,
    old: Annotated[str, Query(alias="from", min_length=1, max_length=32)],
    new: Annotated[str, Query(alias="to", min_length=1, max_length=32)],
) -> PolicyDiffRead:
    try:
        return PolicyDiffRead.of(policy_id, old, new, admin.diff(policy_id, old, new))
    except NotFoundError as exc:
        raise HookRequestError(404, str(exc)) from None
