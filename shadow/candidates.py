"""What a replay compares: candidates, each a policy document and a model threshold, and the bands they imply.

A candidate is written `POLICY[@THRESHOLD]`: POLICY is a bundled policy name or a YAML path; THRESHOLD overrides the
model card's threshold (the lower edge of the card's alerting band).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from policy.document import Match, PolicyDocument, Route, bundled_policy, load_policy
from policy.engine import RoutedPolicy
from policy.port import Action
from policy.routing import CompiledRoute
from scoring.model.card import ModelCard


@dataclass(frozen=True, slots=True)
class Candidate:
    """One arm of a replay: `name` labels it in every output table."""

    name: str
    document: PolicyDocument
    threshold: float


def parse_candidate(spec: str, default_threshold: float, name: str | None = None) -> Candidate:
    """`deterioration`, `deterioration@0.1` or `path/to/policy.yaml@0.1` as a candidate."""
    source, _, threshold = spec.partition("@")
    path = Path(source)
    document = load_policy(path) if path.suffix in (".yaml", ".yml") or path.is_file() else bundled_policy(source)
    value = float(threshold) if threshold else default_threshold
    return Candidate(name or spec, document, value)


def band_edges(card: ModelCard, threshold: float) -> tuple[tuple[str, float], ...]:
    """The card's bands (highest first) for a candidate threshold: every edge scaled by the same factor, so the
    alerting edge lands on the candidate's threshold and the bands below keep their proportion to it (the card's
    `moderate` starts at half the threshold, and so does a candidate's)."""
    return scaled_edges(tuple((b.name, b.min_score) for b in card.bands), card.threshold, threshold)


def scaled_edges(
    edges: tuple[tuple[str, float], ...], card_threshold: float, threshold: float
) -> tuple[tuple[str, float], ...]:
    """Band edges with the card's threshold moved to `threshold` and every other edge scaled alike."""
    ratio = threshold / card_threshold
    return tuple((name, threshold if edge == card_threshold else edge * ratio) for name, edge in edges)


def always_suppressed(policy: RoutedPolicy, scorer: str, band: str) -> bool:
    """True when every route an output of this scorer and band could take suppresses it, whatever the other facts.

    Replay relies on it to skip re-deciding a run of such outputs: the first of the run is decided by the engine,
    and the others can only repeat its suppression (see `shadow.passes`).
    """
    found, sure = _outcomes(policy.document.routes, policy.root.children, scorer, band)
    if not sure:  # no top-level route surely takes the output, so the root (the defaults) might
        found.append(policy.root)
    return all(r.settings.action is Action.SUPPRESS for r in found)


def _outcomes(
    routes: list[Route], compiled: tuple[CompiledRoute, ...], scorer: str, band: str
) -> tuple[list[CompiledRoute], bool]:
    """Routes among these siblings (and below) that could take the output, and whether one surely matches."""
    found: list[CompiledRoute] = []
    sure = False
    for route, node in zip(routes, compiled, strict=True):
        verdict = _label_verdict(route.match, scorer, band)
        if verdict is False:
            continue
        below, child_sure = _outcomes(route.routes, node.children, scorer, band)
        found.extend(below)
        if not child_sure:
            found.append(node)  # no child surely matches, so the route may take the output itself
        if verdict is True:
            sure = True
            if not route.continue_:
                break
    return found, sure


def _label_verdict(match: Match, scorer: str, band: str) -> bool | None:
    """True if the match surely holds, False if it surely fails, None if it depends on other facts."""
    for name, value in (("scorer", scorer), ("band", band)):
        label = getattr(match, name)
        if label is None:
            continue
        hit = re.fullmatch(label.regex, value) is not None if label.regex is not None else value in (label.values or ())
        if hit == label.negate:
            return False
    others = match.model_dump(exclude_none=True, exclude={"scorer", "band"})
    return None if others else True
