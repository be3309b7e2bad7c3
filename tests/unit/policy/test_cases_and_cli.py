"""The case runner and `cdsctl policy`: the bundled policies pass their own case files; a failing case fails loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from policy.cases import format_table, load_cases, run_cases
from policy.cli import app
from policy.document import BUNDLED_DIR, bundled_policy
from policy.engine import RoutedPolicy

BUNDLED = sorted(p.name.removesuffix(".cases.yaml") for p in BUNDLED_DIR.glob("*.cases.yaml"))


def test_every_bundled_policy_ships_with_a_case_file() -> None:
    policies = sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml") if not p.name.endswith(".cases.yaml"))

    assert policies == BUNDLED == ["deterioration", "surface-all"]


@pytest.mark.parametrize("name", BUNDLED)
def test_the_bundled_case_files_all_pass(name: str) -> None:
    results = run_cases(RoutedPolicy(bundled_policy(name)), load_cases(BUNDLED_DIR / f"{name}.cases.yaml"))

    failed = [f"{r.name}: {'; '.join(r.problems)}" for r in results if not r.passed]
    assert failed == []
    assert len(results) >= 5


def test_the_deterioration_cases_cover_every_mechanism() -> None:
    cases = load_cases(BUNDLED_DIR / "deterioration.cases.yaml")

    expected_reasons = {r.value for case in cases.cases for r in case.expect.reasons}
    for reason in (
        "duplicate", "worsened", "locked-out", "snoozed", "snooze-expired", "inhibited", "comfort-care", "silenced",
        "budget-downgrade", "time-window", "delay-released", "confirmed", "delay-cancelled", "already-treated",
        "below-threshold", "escalated",
    ):  # fmt: skip
        assert reason in expected_reasons


FAILING_CASES = """
cases:
  - name: news2 low is shown (wrong on purpose)
    now: 2026-01-14T10:00:00Z
    output: {scorer: news2, band: low, score: 2}
    expect: {action: surface}
  - name: news2 high escalates
    now: 2026-01-14T10:00:00Z
    output: {scorer: news2, band: high, score: 8}
    expect: {action: escalate, notify: [nurse]}
"""


def test_a_failing_case_is_reported_in_the_table_and_exits_with_1(tmp_path: Path) -> None:
    cases = tmp_path / "wrong.cases.yaml"
    cases.write_text(FAILING_CASES)

    result = CliRunner().invoke(app, ["test", str(BUNDLED_DIR / "deterioration.yaml"), str(cases)])

    assert result.exit_code == 1
    assert "FAIL  news2 low is shown (wrong on purpose)" in result.output
    assert "action suppress != surface" in result.output
    assert "1 passed, 1 failed" in result.output


def test_the_bundled_cases_pass_through_the_command_line() -> None:
    result = CliRunner().invoke(
        app, ["test", str(BUNDLED_DIR / "deterioration.yaml"), str(BUNDLED_DIR / "deterioration.cases.yaml")]
    )

    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


def test_validate_prints_the_content_hash_of_a_valid_policy() -> None:
    result = CliRunner().invoke(app, ["validate", str(BUNDLED_DIR / "deterioration.yaml")])

    assert result.exit_code == 0
    assert bundled_policy("deterioration").content_hash() in result.output


def test_validate_lists_every_error_of_a_broken_policy(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text('id: Bad Id\nversion: "1"\nroutes:\n  - {action: shout}\n  - {match: {band: [1, {x: 2}]}}\n')

    result = CliRunner().invoke(app, ["validate", str(broken)])

    assert result.exit_code == 1
    assert "id: String should match pattern" in result.output
    assert "routes[0].action:" in result.output
    assert "routes[1].match.band" in result.output


def test_the_table_lines_up_its_columns() -> None:
    results = run_cases(RoutedPolicy(bundled_policy("surface-all")), load_cases(BUNDLED_DIR / "surface-all.cases.yaml"))
    lines = format_table(results).splitlines()

    expected_at, actual_at = lines[0].index("expected"), lines[0].index("actual")
    for line, result in zip(lines[2:], results, strict=False):
        assert line.startswith("ok")
        assert line[expected_at:].startswith(result.expected)
        assert line[actual_at:] == result.actual
