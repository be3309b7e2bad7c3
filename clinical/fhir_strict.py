"""Strict mode: validate a resource against the FHIR R4B models of fhir.resources before it is read.

Only validation happens here. A valid resource is then read by the very same fast readers, which is what makes the
two modes give identical canonical output; strict mode can only add INVALID_RESOURCE issues and drop resources.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from clinical.fhir_fast import Json


def validation_error(resource: Json) -> str | None:
    """None if the resource is valid R4B, else a summary that names the failing elements but never their values."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return "no resourceType"
    model = _model(resource_type)
    if model is None:
        return f"{resource_type} is not an R4B resource type"
    try:
        model.model_validate(resource)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        return _summary(resource_type, exc)
    return None


def _summary(resource_type: str, exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"{resource_type} failed R4B validation"
    # Only error locations go into the detail: pydantic messages may quote the input, which may be PHI.
    locations = sorted({".".join(str(part) for part in error.get("loc", ())) for error in errors()})
    shown = ", ".join(locations[:5]) + (", ..." if len(locations) > 5 else "")
    return f"{resource_type} failed R4B validation at {shown or 'the resource'}"


@lru_cache(maxsize=256)
def _model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError):
        return None
