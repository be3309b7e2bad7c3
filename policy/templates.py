"""Card text templates: `{placeholders}` filled from the risk output and the context, checked when a policy loads."""

from __future__ import annotations

import string
from collections.abc import Mapping

from scoring.port import RiskOutput

# CDS Hooks asks for a summary under 140 characters.
SUMMARY_LIMIT = 140

DEFAULT_SUMMARY = "{SCORER} {score}: {band} risk{partial}"
DEFAULT_DETAIL = "Score {score}, band **{band}**{partial}.\n\n{explanation}"

# Placeholders a template may use, with the longest value each is expected to take: a summary is refused at load
# time when it could reach the CDS Hooks limit with these.
PLACEHOLDERS: Mapping[str, str] = {
    "scorer": "x" * 16,
    "SCORER": "X" * 16,
    "band": "x" * 10,
    "BAND": "X" * 10,
    "score": "12.345",
    "unit_type": "unknown",
    "hook": "x" * 20,
    "role": "x" * 16,
    "partial": " (partial: missing " + "x" * 24 + ")",
    "missing": "x" * 24,
    "explanation": "",
    "route": "x" * 24,
}


def check_template(template: str, *, summary: bool) -> None:
    """Raise ValueError when a template names an unknown placeholder or a summary could be 140 characters or more."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"template does not parse: {exc}") from None
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        raise ValueError(f"unknown placeholders {unknown} (known: {sorted(PLACEHOLDERS)})")
    if summary:
        rendered = template.format_map(PLACEHOLDERS)
        if len(rendered) >= SUMMARY_LIMIT:
            raise ValueError(f"summary may render to {len(rendered)} characters; it must stay under {SUMMARY_LIMIT}")


def template_values(output: RiskOutput, *, hook: str, role: str, unit_type: str, route: str) -> dict[str, str]:
    score = "n/a" if output.score is None else f"{output.score:g}"
    missing = ", ".join(output.missing)
    return {
        "scorer": output.scorer_id,
        "SCORER": output.scorer_id.upper(),
        "band": output.band,
        "BAND": output.band.upper(),
        "score": score,
        "unit_type": unit_type,
        "hook": hook,
        "role": role,
        "partial": f" (partial: missing {missing})" if output.partial else "",
        "missing": missing,
        "explanation": "\n".join(f"- **{c.feature}**: {c.detail} ({c.points:+g})" for c in output.explanation),
        "route": route,
    }


def render(template: str, values: Mapping[str, str], *, summary: bool) -> str:
    text = template.format_map(values)
    # The load-time check bounds typical values; a long list of missing inputs may still overflow, so cut it.
    if summary and len(text) >= SUMMARY_LIMIT:
        text = text[: SUMMARY_LIMIT - 2] + "…"
    return text
