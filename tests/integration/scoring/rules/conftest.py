"""The bundled rule scorers, compiled into the real durable-rules engine once per test session."""

from __future__ import annotations

import pytest

from scoring.rules import RuleScorer, load_rule_scorers


@pytest.fixture(scope="session")
def rule_scorers() -> dict[str, RuleScorer]:
    scorers = load_rule_scorers()
    assert all(isinstance(scorer, RuleScorer) for scorer in scorers)
    return {scorer.scorer_id: scorer for scorer in scorers if isinstance(scorer, RuleScorer)}


@pytest.fixture(scope="session")
def news2(rule_scorers: dict[str, RuleScorer]) -> RuleScorer:
    return rule_scorers["news2"]


@pytest.fixture(scope="session")
def qsofa(rule_scorers: dict[str, RuleScorer]) -> RuleScorer:
    return rule_scorers["qsofa"]


@pytest.fixture(scope="session")
def sirs(rule_scorers: dict[str, RuleScorer]) -> RuleScorer:
    return rule_scorers["sirs"]
