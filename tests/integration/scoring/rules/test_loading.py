"""Loading rule sets at start-up: the bundled ones by default, an informaticist's own, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.port import Scorer
from scoring.rules import RuleSetError, load_rule_scorers
from tests.unit.scoring.rules.builders import AS_OF, context

SHOCK_INDEX_LIKE = """
id: tachycardia-flag
version: "0.1"
title: Tachycardia flag
source: local example
rounding: heart rate rounded half up to a whole number.
parameters:
  - name: heart_rate
    kind: heart_rate
    unit: /min
    bands:
      - {max: 100, points: 0}
      - {min: 101, points: 1}
risk_bands:
  - {band: flagged, min_score: 1}
  - {band: clear}
"""


def test_the_bundled_news2_qsofa_and_sirs_load_by_default() -> None:
    scorers = load_rule_scorers()
    assert [scorer.scorer_id for scorer in scorers] == ["news2", "qsofa", "sirs"]
    assert all(isinstance(scorer, Scorer) for scorer in scorers)


def test_a_new_rule_set_file_is_loaded_and_scores(tmp_path: Path) -> None:
    (tmp_path / "tachycardia.yaml").write_text(SHOCK_INDEX_LIKE, encoding="utf-8")
    (scorer,) = load_rule_scorers(tmp_path)
    assert scorer.score(context({"heart_rate": 100.5}), AS_OF)[0].band == "flagged"
    assert scorer.score(context({"heart_rate": 100.4}), AS_OF)[0].band == "clear"


def test_one_broken_file_refuses_the_directory_naming_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "a_good.yaml").write_text(SHOCK_INDEX_LIKE, encoding="utf-8")
    (tmp_path / "b_broken.yaml").write_text(SHOCK_INDEX_LIKE.replace("points: 1}", "pints: 1}"), encoding="utf-8")
    with pytest.raises(RuleSetError, match=r"b_broken\.yaml.*parameters\[0\]\.bands\[1\]"):
        load_rule_scorers(tmp_path)


def test_two_files_with_the_same_id_are_refused(tmp_path: Path) -> None:
    for name in ("one.yaml", "two.yaml"):
        (tmp_path / name).write_text(SHOCK_INDEX_LIKE, encoding="utf-8")
    with pytest.raises(RuleSetError, match=r"two\.yaml: id: 'tachycardia-flag' is already defined in one\.yaml"):
        load_rule_scorers(tmp_path)


def test_a_directory_without_rule_sets_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="no rule-set files"):
        load_rule_scorers(tmp_path)


def test_a_rule_set_the_engine_cannot_compile_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise RuntimeError("engine said no")

    monkeypatch.setattr("scoring.rules.durable_matcher.engine.Ruleset", refuse)
    # A version no other test uses, so that no compiled copy is reused.
    (tmp_path / "odd.yaml").write_text(SHOCK_INDEX_LIKE.replace('"0.1"', '"0.1-compile-refusal"'), encoding="utf-8")
    with pytest.raises(RuleSetError, match=r"odd\.yaml: durable-rules could not compile rule set tachycardia-flag"):
        load_rule_scorers(tmp_path)
