"""Schemas of the CDS Hooks 2.0 wire format, named by role. Responses are checked against the `*Read` models in
tests (the spec's own examples must pass them too), and they document the endpoints in the OpenAPI schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, model_validator


class _Wire(BaseModel):
    # Unknown members, `extension` among them, are tolerated on input as the specification asks.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Strict(BaseModel):
    # What we send carries only the members the specification defines (plus `extension`).
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    extension: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_null_or_empty_members(cls, data: Any) -> Any:
        if isinstance(data, dict):
            empty = [k for k, v in data.items() if v is None or v == "" or v == [] or v == {}]
            if empty:
                raise ValueError(f"members must be left out rather than sent empty: {', '.join(sorted(empty))}")
        return data


# Requests


class FhirAuthorization(_Wire):
    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    patient: str | None = None


class HookRequest(_Wire):
    """A CDS Hooks 2.0 service request."""

    hook: str = Field(min_length=1)
    # A UUID in the specification; anything up to the stored identifier's width is accepted, longer is a clear 400.
    hook_instance: str = Field(alias="hookInstance", min_length=1, max_length=128)
    fhir_server: AnyUrl | None = Field(default=None, alias="fhirServer")
    fhir_authorization: FhirAuthorization | None = Field(default=None, alias="fhirAuthorization")
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _authorization_needs_a_server(self) -> HookRequest:
        if self.fhir_authorization is not None and self.fhir_server is None:
            raise ValueError("fhirAuthorization is only allowed together with fhirServer")
        return self


# Responses


class CodingRead(_Strict):
    code: str = Field(min_length=1)
    system: str = Field(min_length=1)
    display: str | None = None


class SourceRead(_Strict):
    label: str = Field(min_length=1)
    url: AnyUrl | None = None
    icon: AnyUrl | None = None
    topic: CodingRead | None = None


class ActionRead(_Strict):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resource_id: str | None = Field(default=None, alias="resourceId")

    @model_validator(mode="after")
    def _resource_by_type(self) -> ActionRead:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type} action carries the resource")
        if self.type == "delete" and not self.resource_id:
            raise ValueError("a delete action carries resourceId")
        return self


class SystemActionRead(ActionRead):
    pass


class SuggestionRead(_Strict):
    label: str = Field(min_length=1)
    uuid: str | None = None
    is_recommended: bool | None = Field(default=None, alias="isRecommended")
    actions: list[ActionRead] | None = None


class LinkRead(_Strict):
    label: str = Field(min_length=1)
    url: AnyUrl
    type: Literal["absolute", "smart"]
    app_context: str | None = Field(default=None, alias="appContext")

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> LinkRead:
        if self.app_context is not None and self.type != "smart":
            raise ValueError("appContext is only for smart links")
        return self


class CardRead(_Strict):
    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=139)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: SourceRead
    suggestions: list[SuggestionRead] | None = None
    selection_behavior: Literal["at-most-one", "any"] | None = Field(default=None, alias="selectionBehavior")
    override_reasons: list[CodingRead] | None = Field(default=None, alias="overrideReasons")
    links: list[LinkRead] | None = None

    @model_validator(mode="after")
    def _selection_behavior_with_suggestions(self) -> CardRead:
        if self.suggestions and self.selection_behavior is None:
            raise ValueError("selectionBehavior is required when a card has suggestions")
        return self


class CardsResponse(BaseModel):
    """A hook's answer. `cards` is always present, possibly empty; `systemActions` only when there are some."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cards: list[CardRead]
    system_actions: list[SystemActionRead] | None = Field(default=None, alias="systemActions", min_length=1)
    extension: dict[str, Any] | None = None


class ServiceRead(_Strict):
    hook: str = Field(min_length=1)
    id: str = Field(min_length=1)
    title: str | None = None
    description: str = Field(min_length=1)
    prefetch: dict[str, str] | None = None
    usage_requirements: str | None = Field(default=None, alias="usageRequirements")


class DiscoveryResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: list[ServiceRead]


# Feedback receipt


class FeedbackReceiptRead(BaseModel):
    recorded: int
    duplicates: int


# Errors


class ErrorDetailRead(BaseModel):
    status: int
    message: str


class ErrorRead(BaseModel):
    """Every refusal: the HTTP status repeated, with a message that never echoes submitted values."""

    error: ErrorDetailRead
