"""Rule-set files are validated on load: a file that does not validate is refused with a message naming the file
and the field, and a band table must cover the whole number line with no gap or overlap."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.rules import BUNDLED_DIRECTORY, RuleSetError, read_rule_set

VALID = """
id: example
version: "1.0"
title: Example
source: test
rounding: whole numbers, half up.
parameters:
  - name: resp_rate
    kind: resp_rate
    unit: /min
    precision: 0
    bands:
      - {max: 8, points: 3}
      - {min: 9, max: 20, points: 0}
      - {min: 21, points: 2}
  - name: consciousness
    kind: consciousness
    bands:
      - {codes: [A], points: 0}
      - {codes: [C, V, P, U], points: 3}
risk_bands:
  - {band: high, min_score: 3}
  - {band: low}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["news2.yaml", "qsofa.yaml", "sirs.yaml"])
def test_the_bundled_rule_sets_validate(name: str) -> None:
    rule_set, content_hash = read_rule_set(BUNDLED_DIRECTORY / name)
    assert rule_set.id == name.removesuffix(".yaml")
    assert len(content_hash) == 64


def test_a_valid_file_is_accepted(tmp_path: Path) -> None:
    rule_set, _ = read_rule_set(_write(tmp_path, VALID))
    assert [parameter.name for parameter in rule_set.parameters] == ["resp_rate", "consciousness"]


def test_comments_and_layout_do_not_change_the_content_hash(tmp_path: Path) -> None:
    _, plain = read_rule_set(_write(tmp_path, VALID))
    _, commented = read_rule_set(_write(tmp_path, "# a comment\n" + VALID.replace("{max: 8,", "{ max: 8,")))
    _, changed = read_rule_set(_write(tmp_path, VALID.replace("{max: 8, points: 3}", "{max: 8, points: 2}")))
    assert plain == commented
    assert plain != changed


REFUSALS = [
    (
        "gap",
        "{min: 9, max: 20, points: 0}",
        "{min: 10, max: 20, points: 0}",
        r"parameters\[0\]: gap between bands\[0\] \(max 8\) and bands\[1\] \(min 10\): bands\[1\]\.min must be 9",
    ),
    (
        "overlap",
        "{min: 9, max: 20, points: 0}",
        "{min: 8, max: 20, points: 0}",
        r"parameters\[0\]: bands\[0\] \(max 8\) and bands\[1\] \(min 8\) overlap: bands\[1\]\.min must be 9",
    ),
    (
        "closed lowest band",
        "{max: 8, points: 3}",
        "{min: 0, max: 8, points: 3}",
        r"parameters\[0\]: bands\[0\] has a min: the lowest band must be open below",
    ),
    (
        "closed highest band",
        "{min: 21, points: 2}",
        "{min: 21, max: 60, points: 2}",
        r"parameters\[0\]: bands\[2\] has a max",
    ),
    (
        "decimals beyond precision",
        "{min: 9, max: 20, points: 0}",
        "{min: 8.5, max: 20, points: 0}",
        r"bands\[1\]\.min \(8\.5\) has more decimals than the precision \(0\)",
    ),
    (
        "misspelt field",
        "{min: 21, points: 2}",
        "{min: 21, pionts: 2}",
        r"parameters\[0\]\.bands\[2\]\.pionts: Extra inputs are not permitted",
    ),
    (
        "negative points",
        "{min: 21, points: 2}",
        "{min: 21, points: -2}",
        r"parameters\[0\]\.bands\[2\]\.points: Input should be greater than or equal to 0",
    ),
    (
        "min above max",
        "{min: 9, max: 20, points: 0}",
        "{min: 20, max: 9, points: 0}",
        r"parameters\[0\]\.bands\[1\]: min \(20\.0\) is above max \(9\.0\)",
    ),
    ("wrong unit", "unit: /min", "unit: /s", r"parameters\[0\]: unit '/s' is not the canonical unit of resp_rate"),
    ("unknown kind", "kind: resp_rate", "kind: breathing", r"parameters\[0\]: kind 'breathing' is neither"),
    (
        "code in two bands",
        "{codes: [C, V, P, U], points: 3}",
        "{codes: [A, V, P, U], points: 3}",
        r"parameters\[1\]: code 'A' is in both bands\[0\] and bands\[1\]",
    ),
    ("numeric bands for a coded kind", "{codes: [A], points: 0}", "{max: 1, points: 0}", r"parameters\[1\]"),
    (
        "conditional last risk band",
        "{band: low}",
        "{band: low, min_score: 0}",
        r"\(top level\): the last risk band must have no conditions",
    ),
    (
        "undeclared criterion",
        "    kind: consciousness\n",
        "    kind: consciousness\n    criterion: mentation\n",
        r"\(top level\): parameter 'consciousness' names criterion 'mentation', which is not declared",
    ),
    ("missing rounding rule", "rounding: whole numbers, half up.\n", "", r"rounding: Field required"),
]


@pytest.mark.parametrize(("old", "new", "message"), [row[1:] for row in REFUSALS], ids=[row[0] for row in REFUSALS])
def test_a_rule_set_that_does_not_validate_is_refused_naming_the_file_and_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    broken = VALID.replace(old, new, 1)
    assert broken != VALID
    with pytest.raises(RuleSetError, match=r"example\.yaml: .*" + message):
        read_rule_set(_write(tmp_path, broken))


def test_tables_that_could_both_apply_are_refused(tmp_path: Path) -> None:
    tables = """
  - name: spo2
    kind: spo2
    unit: "%"
    tables:
      - label: one
        when: {spo2_scale2_target: "true"}
        bands: [{max: 90, points: 1}, {min: 91, points: 0}]
      - label: two
        when: {oxygen_therapy: oxygen}
        bands: [{max: 90, points: 2}, {min: 91, points: 0}]
"""
    text = VALID.replace("parameters:\n", "parameters:" + tables, 1)
    with pytest.raises(RuleSetError, match=r"parameters\[0\]: tables\[0\] and tables\[1\] can both apply"):
        read_rule_set(_write(tmp_path, text))


def test_a_file_that_is_not_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match=r"example\.yaml: not valid YAML at line 4"):
        read_rule_set(_write(tmp_path, "id: x\nversion: '1'\nparameters: [unclosed\n  - : :\n"))


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match=r"example\.yaml: must be a mapping"):
        read_rule_set(_write(tmp_path, "- just\n- a list\n"))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match=r"absent\.yaml: cannot be read"):
        read_rule_set(tmp_path / "absent.yaml")
