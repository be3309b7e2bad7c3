"""A live candidate made runnable: the policy that decides for it, and how its risk outputs differ from the live ones.

Threshold candidates re-band the live model outputs (the same scores); model candidates rescore the same context
with another registered version; policy candidates decide the live outputs with another policy. Every arm runs the
same scorers and policy engine as the live path: never a second implementation.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from clinical.model import ClinicalContext
from policy.document import PolicyValidationError
from policy.engine import RoutedPolicy
from policy.port import Policy
from scoring.model.card import ModelCard
from scoring.model.registry import ModelRefused, ModelRegistry
from scoring.model.scorer import OnnxModelScorer, encounter_start
from scoring.port import RiskOutput, Scorer
from shadow.candidates import band_edges, parse_candidate
from shadow.stages import CandidateKind, CandidateRecord

# Names only, never paths: a candidate posted through the API must not make the server read an arbitrary file.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,31}")


class CandidateInvalidError(ValueError):
    """The candidate names a policy, threshold or model version that cannot run for its service."""


@dataclass(frozen=True, slots=True)
class Arm:
    policy: Policy
    # scorer id → band edges (highest first) with the candidate's threshold in place of the card's.
    edges: Mapping[str, tuple[tuple[str, float], ...]]
    # scorer id → the candidate's version of that model.
    rescorers: Mapping[str, Scorer]

    def outputs(self, live: Sequence[RiskOutput], context: ClinicalContext, now: datetime) -> tuple[RiskOutput, ...]:
        """The candidate's risk outputs, one per live output and in the same order, so decisions pair up."""
        out: list[RiskOutput] = []
        for output in live:
            scorer = self.rescorers.get(output.scorer_id)
            if scorer is not None:
                rescored = scorer.score(context, now)
                output = rescored[0] if rescored else output
            edges = self.edges.get(output.scorer_id)
            if edges is not None and output.score is not None:
                output = replace(output, band=_band(output.score, edges))
            out.append(output)
        return tuple(out)


def _band(score: float, edges: tuple[tuple[str, float], ...]) -> str:
    for name, lower in edges:
        if score >= lower:
            return name
    return edges[-1][0] if edges else "unbanded"


class ArmFactory:
    """Checks candidates when they are created and builds their arms, each once per candidate."""

    def __init__(self, policies: Mapping[str, Policy], registry: ModelRegistry | None = None) -> None:
        self._policies = policies
        self._registry = registry or ModelRegistry()
        self._model_ids = {model_id for model_id, _ in self._registry.entries()}
        self._arms: dict[tuple[int, str, str | None], Arm] = {}

    def kind_of(
        self, spec: str, model_version: str | None, *, scorers: Collection[str], live_policy: str
    ) -> CandidateKind:
        """The candidate's kind; raises CandidateInvalidError when it cannot run for a service with these scorers."""
        self._build(spec, model_version, scorers)
        source, _, threshold = spec.partition("@")
        if model_version is not None:
            return CandidateKind.MODEL
        if threshold and source == live_policy:
            return CandidateKind.THRESHOLD
        return CandidateKind.POLICY

    def arm(self, candidate: CandidateRecord, scorers: Collection[str]) -> Arm:
        key = (candidate.id, candidate.spec, candidate.model_version)
        found = self._arms.get(key)
        if found is None:
            found = self._arms[key] = self._build(candidate.spec, candidate.model_version, scorers)
        return found

    def _build(self, spec: str, model_version: str | None, scorers: Collection[str]) -> Arm:
        source, _, threshold_text = spec.partition("@")
        models = sorted(s for s in scorers if s in self._model_ids)
        threshold = _threshold(threshold_text)
        if (threshold is not None or model_version is not None) and not models:
            raise CandidateInvalidError("a threshold or model version needs a service with a model scorer")
        cards: dict[str, ModelCard] = {}
        rescorers: dict[str, Scorer] = {}
        for model_id in models:
            if model_version is not None and not _VERSION.fullmatch(model_version):
                raise CandidateInvalidError("a model version is a plain version string")
            try:
                loaded = self._registry.load(model_id, model_version)
            except ModelRefused as exc:
                raise CandidateInvalidError(f"model {model_id} version {model_version}: {exc.reason}") from exc
            cards[model_id] = loaded.card
            if model_version is not None:
                rescorers[model_id] = OnnxModelScorer(loaded, hospital_admission=encounter_start)
        policy = self._policy(spec, source, next(iter(cards.values()), None))
        edges = {} if threshold is None else {m: band_edges(card, threshold) for m, card in cards.items()}
        return Arm(policy=policy, edges=edges, rescorers=rescorers)

    def _policy(self, spec: str, source: str, card: ModelCard | None) -> Policy:
        loaded = self._policies.get(source)
        if loaded is not None:
            return loaded
        if not _NAME.fullmatch(source):
            raise CandidateInvalidError("a candidate's policy is a loaded or bundled policy name")
        try:
            # The same `POLICY[@THRESHOLD]` parsing replay uses; the threshold is applied by the arm's band edges.
            parsed = parse_candidate(spec, card.threshold if card is not None else 0.0)
        except (FileNotFoundError, PolicyValidationError, ValueError) as exc:
            raise CandidateInvalidError(f"no policy named {source!r}") from exc
        return RoutedPolicy(parsed.document)


def _threshold(text: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CandidateInvalidError("a threshold is a number") from None
    if not 0.0 < value < 1.0:
        raise CandidateInvalidError("a model threshold lies strictly between 0 and 1")
    return value
