"""Rule scorers (NEWS2, qSOFA, SIRS) from readable YAML rule sets, matched with durable-rules."""

from scoring.rules.loading import BUNDLED_DIRECTORY, RuleSetError, load_rule_scorers, load_rule_set, read_rule_set
from scoring.rules.scorer import RuleScorer

__all__ = ["BUNDLED_DIRECTORY", "RuleScorer", "RuleSetError", "load_rule_scorers", "load_rule_set", "read_rule_set"]
