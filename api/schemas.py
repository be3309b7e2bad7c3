"""Request and response schemas of the CDS Hooks endpoints, named by role."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class HookRequest(BaseModel):
    """A CDS Hooks 2.0 service request. Unknown members (and `extension`) are tolerated."""

    model_config = ConfigDict(extra="allow")

    hook: str = Field(min_length=1)
    hook_instance: str = Field(alias="hookInstance", min_length=1)
    fhir_server: str | None = Field(default=None, alias="fhirServer")
    fhir_authorization: dict[str, Any] | None = Field(default=None, alias="fhirAuthorization")
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class CardsResponse(BaseModel):
    cards: list[dict[str, Any]]
