"""CDS Hooks 2.0 prefetch: templates checked at catalogue load, and per call the EHR's prefetch completed from its
FHIR server (`PrefetchResolver.resolve`), or a PrefetchUnavailable (412) / PrefetchRequestError (400)."""

from api.prefetch.fhir_fetch import make_fhir_client
from api.prefetch.model import (
    IssueReason,
    PrefetchIssue,
    PrefetchRequestError,
    PrefetchUnavailable,
    ResolvedPrefetch,
    UnavailableReason,
)
from api.prefetch.resolver import PrefetchResolver
from api.prefetch.templates import (
    TemplateError,
    UnfulfillableTemplateError,
    render_template,
    validate_service_prefetch,
    validate_template,
)

__all__ = [
    "IssueReason",
    "PrefetchIssue",
    "PrefetchRequestError",
    "PrefetchResolver",
    "PrefetchUnavailable",
    "ResolvedPrefetch",
    "TemplateError",
    "UnavailableReason",
    "UnfulfillableTemplateError",
    "make_fhir_client",
    "render_template",
    "validate_service_prefetch",
    "validate_template",
]
