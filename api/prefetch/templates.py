"""Prefetch templates (CDS Hooks 2.0.1 "Prefetch tokens"): checked when the service catalogue loads, rendered into a
relative FHIR URL for each call from the hook's context and the user."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, get_origin
from urllib.parse import quote

from api.hook_contexts import HOOK_CONTEXTS

# The user tokens and the resource type `context.userId` must name for each to have a value.
USER_TOKENS: dict[str, str] = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_TOKEN = re.compile(r"\{\{(.*?)\}\}")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KNOWN = "{{context.<field>}}, " + ", ".join(f"{{{{{name}}}}}" for name in USER_TOKENS)


class TemplateError(ValueError):
    """A template that should never have passed validation: a configuration error, not a property of the call."""


class UnfulfillableTemplateError(LookupError):
    """A token has no value for this call (an absent context field, a user of another type): nothing to fetch."""


def validate_template(template: str, *, context_fields: Mapping[str, bool] | None = None) -> list[str]:
    """Every problem of one template, as sentences without values. `context_fields` maps the hook's context fields
    to whether they are simple values; given, tokens naming other or complex fields are refused too."""
    if not template.strip():
        return ["the template is empty"]
    problems: list[str] = []
    literal = _TOKEN.sub("", template)
    if "{{" in literal or "}}" in literal:
        problems.append("the template has an unbalanced '{{' or '}}'")
    if "://" in literal or template.startswith("/"):
        problems.append("the template must be a relative FHIR URL such as Patient/{{context.patientId}}")
    if "#" in literal or any(char.isspace() for char in literal):
        problems.append("the template must not contain '#' or whitespace")
    for match in _TOKEN.finditer(template):
        problem = _token_problem(match.group(1).strip(), context_fields)
        if problem:
            problems.append(problem)
    _, _, query = template.partition("?")
    names = {part.partition("=")[0] for part in query.split("&") if part}
    if any(name == "sort" or name.startswith("sort:") for name in names):
        # The 2.0.1 specification's own example uses `sort:desc=date`, which FHIR servers reject or ignore.
        problems.append("'sort' is not a FHIR search parameter: use _sort=-date for newest first")
    return problems


def _token_problem(token: str, context_fields: Mapping[str, bool] | None) -> str | None:
    if token in USER_TOKENS:
        return None
    if not token.startswith("context."):
        return f"unknown token {{{{{token}}}}}; tokens are {_KNOWN}"
    field = token.removeprefix("context.")
    if "." in field:
        return f"{{{{{token}}}}}: only root-level context fields can be tokens"
    if not _FIELD.fullmatch(field):
        return f"{{{{{token}}}}} does not name a context field"
    if context_fields is not None:
        if field not in context_fields:
            return f"{{{{{token}}}}}: the hook has no context field {field!r}"
        if not context_fields[field]:
            return f"{{{{{token}}}}}: context.{field} is an array or object, not a simple value"
    return None


def hook_context_fields(hook: str) -> dict[str, bool] | None:
    """The context fields of a supported hook, each mapped to whether it is a simple value; None if unknown."""
    model = HOOK_CONTEXTS.get(hook)
    if model is None:
        return None
    fields: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        complex_value = get_origin(annotation) in (list, dict) or annotation in (list, dict)
        fields[info.alias or name] = not complex_value
    return fields


def validate_service_prefetch(hook: str, templates: Mapping[str, str]) -> list[str]:
    """The problems of a service's whole prefetch, each prefixed with its key: what the catalogue checks at load."""
    fields = hook_context_fields(hook)
    problems = []
    for key, template in templates.items():
        if not key.strip():
            problems.append("a prefetch key is empty")
        found = validate_template(template, context_fields=fields)
        problems.extend(f"prefetch {key!r}: {problem}" for problem in found)
    return problems


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """The relative FHIR URL of a template for one call, token values percent-encoded where they land.

    Raises UnfulfillableTemplateError when a token has no value, TemplateError for a token validation refuses.
    """
    query_at = _query_start(template)
    parts: list[str] = []
    last = 0
    for match in _TOKEN.finditer(template):
        parts.append(template[last : match.start()])
        value = _token_value(match.group(1).strip(), context)
        in_query = query_at is not None and match.start() > query_at
        # In a query a value is one parameter value: `&`, `,`, `|` and `/` are escaped so it cannot add parameters
        # or alternatives. In the path a slash is kept so that {{context.userId}} reads Practitioner/123.
        parts.append(quote(value, safe="" if in_query else "/"))
        last = match.end()
    parts.append(template[last:])
    url = "".join(parts)
    path = url.partition("?")[0]
    if any(segment in ("", ".", "..") for segment in path.split("/")):
        raise UnfulfillableTemplateError("the rendered path is not a FHIR read or search")
    return url


def _query_start(template: str) -> int | None:
    """Where the query begins: the first '?' outside a token."""
    literal = _TOKEN.sub(lambda m: "x" * len(m.group(0)), template)
    position = literal.find("?")
    return None if position < 0 else position


def _token_value(token: str, context: Mapping[str, Any]) -> str:
    if token in USER_TOKENS:
        return _user_id(token, context.get("userId"))
    if not token.startswith("context.") or "." in token.removeprefix("context."):
        raise TemplateError(f"unknown token {{{{{token}}}}}")
    field = token.removeprefix("context.")
    value = context.get(field)
    if value is None or value == "":
        raise UnfulfillableTemplateError(f"context.{field} is absent")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise UnfulfillableTemplateError(f"context.{field} is an array or object, not a simple value")


def _user_id(token: str, user_id: object) -> str:
    wanted = USER_TOKENS[token]
    if not isinstance(user_id, str):
        raise UnfulfillableTemplateError(f"{{{{{token}}}}} has no value: context.userId is absent")
    resource_type, _, identifier = user_id.partition("/")
    if resource_type != wanted or not identifier or "/" in identifier:
        # A Practitioner user has no PractitionerRole id: the template asks for data that does not exist here.
        raise UnfulfillableTemplateError(f"{{{{{token}}}}} has no value: the user is not a {wanted}")
    return identifier
