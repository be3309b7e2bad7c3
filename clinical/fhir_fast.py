"""Type-checked readers of FHIR JSON elements: the hot path reads plain dicts and never trusts a field's type.

Every reader returns None (or an empty tuple) when an element is missing or has the wrong JSON type, so that garbage
in a field becomes "absent" for the caller, which then records why the value could not be used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from clinical.model import Provenance, new_provenance

LOINC_SYSTEM = "http://loinc.org"

Json = Mapping[str, Any]


def text(element: Json, key: str) -> str | None:
    value = element.get(key)
    return value if isinstance(value, str) else None


def obj(element: Json, key: str) -> Json | None:
    value = element.get(key)
    return value if isinstance(value, dict) else None


def objs(element: Json, key: str) -> tuple[Json, ...]:
    """The dict items of a list element (non-dict items are skipped: they cannot carry data we read)."""
    value = element.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, dict))


def number(value: object) -> float | None:
    """A JSON number as a float; booleans, strings and non-finite numbers are not numbers here."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # an integer too large for a float is not a measurement.
            return None
    if isinstance(value, Decimal):
        converted = float(value)
        return converted if math.isfinite(converted) else None
    return None


def codings(concept: Json | None) -> tuple[tuple[str | None, str | None, str | None], ...]:
    """(system, code, display) of each Coding of a CodeableConcept."""
    if concept is None:
        return ()
    return tuple((text(c, "system"), text(c, "code"), text(c, "display")) for c in objs(concept, "coding"))


def coded_strings(concept: Json | None) -> tuple[str, ...]:
    """Each Coding as "system|code", the form canonical objects carry."""
    return tuple(f"{system or ''}|{code}" for system, code, _ in codings(concept) if code)


def concept_text(concept: Json | None) -> str | None:
    """The human text of a CodeableConcept: its `text`, else the first Coding display."""
    if concept is None:
        return None
    own = text(concept, "text")
    if own:
        return own
    for _, _, display in codings(concept):
        if display:
            return display
    return None


def provenance(resource: Json, source_base: str | None) -> Provenance:
    """Provenance of a resource: meta.source wins over the Bundle entry's server base."""
    resource_type = resource.get("resourceType")
    return typed_provenance(resource, resource_type if type(resource_type) is str else "unknown", source_base)


def typed_provenance(resource: Json, resource_type: str, source_base: str | None) -> Provenance:
    """provenance() of a resource whose resourceType the caller has read already (the hot path has)."""
    resource_id = resource.get("id")
    meta = resource.get("meta")
    version = source = None
    if type(meta) is dict:
        version = meta.get("versionId")
        source = meta.get("source")
    return new_provenance(
        resource_type,
        resource_id if type(resource_id) is str else None,
        version if type(version) is str else None,
        source if type(source) is str and source else source_base,
    )


def server_base(full_url: object, known: str | None = None) -> str | None:
    """The server base of a Bundle entry fullUrl ("https://x/fhir/Patient/1" -> "https://x/fhir").

    urn:uuid and urn:oid fullUrls name no server, so they give None. `known`, a base found before (the entries of
    one Bundle nearly always share theirs), is checked first: "<known>/<Type>/<id>" gives it back without the parse,
    which would find the same (no "/" at the end, no _history part).
    """
    if type(full_url) is not str:
        return None
    if known is not None:
        # One split from the right, the cheapest of the string methods here, takes the URL apart.
        parts = full_url.rsplit("/", 2)
        if len(parts) == 3 and parts[0] == known and parts[2] and "/_history/" not in full_url:
            return known
    if not full_url.startswith(("http://", "https://")):
        return None
    path = full_url.rstrip("/")
    if "/_history/" in path:
        path = path[: path.index("/_history/")]
    # Drop "/<Type>/<id>"; what is left must still be more than the scheme. A bare "https://" has lost its "//"
    # to the rstrip above and names no server at all.
    scheme_end = path.find("//")
    cut = path.rfind("/", 0, path.rfind("/"))
    return path[:cut] if scheme_end >= 0 and cut > scheme_end + 2 else None
