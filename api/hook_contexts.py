"""The context each supported hook must carry (CDS Hooks library hooks 1.0.1), checked before any work is done."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_USER_TYPES = ("Practitioner/", "PractitionerRole/", "Patient/", "RelatedPerson/")


class _Context(BaseModel):
    # Unknown members and `extension` are tolerated, as the specification asks of services.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    user_id: str = Field(alias="userId", min_length=3)
    patient_id: str = Field(alias="patientId", min_length=1)
    encounter_id: str | None = Field(default=None, alias="encounterId", min_length=1)

    @field_validator("user_id")
    @classmethod
    def _user_is_a_reference(cls, value: str) -> str:
        if not value.startswith(_USER_TYPES) or value.endswith("/"):
            raise ValueError("must be a relative reference such as Practitioner/123")
        return value


class PatientViewContext(_Context):
    pass


class _OrderContext(_Context):
    draft_orders: dict[str, Any] = Field(alias="draftOrders")

    @field_validator("draft_orders")
    @classmethod
    def _a_bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise ValueError("must be a FHIR Bundle")
        return value


class OrderSelectContext(_OrderContext):
    selections: list[str] = Field(min_length=1)


class OrderSignContext(_OrderContext):
    pass


class EncounterContext(_Context):
    encounter_id: str = Field(alias="encounterId", min_length=1)


HOOK_CONTEXTS: dict[str, type[_Context]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
    "encounter-start": EncounterContext,
    "encounter-discharge": EncounterContext,
}


class ContextError(ValueError):
    pass


def check_context(hook: str, context: dict[str, Any]) -> None:
    """Raise ContextError naming every missing or malformed context field (never echoing values)."""
    model = HOOK_CONTEXTS.get(hook)
    if model is None:
        raise ContextError(f"unsupported hook {hook!r}")
    try:
        model.model_validate(context)
    except ValidationError as exc:
        problems = [
            f"context.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
        ]
        raise ContextError("; ".join(problems)) from exc
