"""Reading rule-set files: YAML in, validated and compiled scorers out, or a refusal naming the file and the field."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import ValidationError

from scoring.port import Scorer
from scoring.rules.durable_matcher import RuleCompileError, compile_rule_set
from scoring.rules.inputs import DEFAULT_LOOKBACK
from scoring.rules.schema import RuleSet
from scoring.rules.scorer import RuleScorer

BUNDLED_DIRECTORY = Path(__file__).resolve().parent.parent / "rulesets"


class RuleSetError(ValueError):
    """A rule-set file that was refused; the message names the file and the field at fault."""


def _location(parts: Sequence[int | str]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(error: ValidationError) -> str:
    lines = []
    for detail in error.errors():
        message = str(detail["msg"]).removeprefix("Value error, ")
        lines.append(f"{_location(detail['loc'])}: {message}")
    return "; ".join(lines)


def read_rule_set(path: Path) -> tuple[RuleSet, str]:
    """The validated rule set in `path` and its content hash (sha256 of its canonical JSON form)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RuleSetError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise RuleSetError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise RuleSetError(f"{path}: must be a mapping with id, version, parameters and risk_bands")
    try:
        rule_set = RuleSet.model_validate(data)
    except ValidationError as error:
        raise RuleSetError(f"{path}: {_describe(error)}") from None
    # Hash of the meaning, not the bytes: comments and layout do not change the version, any rule change does.
    content_hash = hashlib.sha256(rule_set.model_dump_json().encode("utf-8")).hexdigest()
    return rule_set, content_hash


def load_rule_set(path: Path, *, lookback: timedelta = DEFAULT_LOOKBACK) -> RuleScorer:
    """One rule-set file, validated and compiled into durable-rules (once per content), as a scorer."""
    rule_set, content_hash = read_rule_set(path)
    try:
        matcher = compile_rule_set(rule_set, content_hash)
    except RuleCompileError as error:
        raise RuleSetError(f"{path}: {error}") from error
    return RuleScorer(rule_set, content_hash, matcher, lookback=lookback)


def load_rule_scorers(directory: Path | None = None, *, lookback: timedelta = DEFAULT_LOOKBACK) -> list[Scorer]:
    """Every `*.yaml` rule set in `directory` (the bundled NEWS2, qSOFA and SIRS by default), in file-name order."""
    folder = BUNDLED_DIRECTORY if directory is None else directory
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise RuleSetError(f"{folder}: no rule-set files (*.yaml) found")
    scorers: list[Scorer] = []
    seen: dict[str, Path] = {}
    for path in paths:
        scorer = load_rule_set(path, lookback=lookback)
        if scorer.scorer_id in seen:
            raise RuleSetError(f"{path}: id: {scorer.scorer_id!r} is already defined in {seen[scorer.scorer_id].name}")
        seen[scorer.scorer_id] = path
        scorers.append(scorer)
    return scorers
