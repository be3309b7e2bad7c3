"""Policy documents: validated as a whole, refused with every error and its path, hashed by content."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from policy.document import BUNDLED_DIR, PolicyValidationError, bundled_policy, load_policy

BROKEN = """
id: broken
version: "1"
scorers: {news2: [low, medium, high]}
time_windows:
  handover: {start: "07:00", end: "07:30", effect: delay}
routes:
  - name: fine
    match: {scorer: news2}
  - name: typo-in-action
    match: {scorer: news2}
    action: supress
  - name: parent
    match: {scorer: news2}
    routes:
      - match: {band: hgh}
      - match: {age_min: old}
        card: {summary: "{nope}"}
        time_windows: [lunch]
        dedupe: 4h
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(PolicyValidationError) as refused:
        load_policy(text)
    return refused.value.errors


def test_a_broken_policy_is_refused_with_every_error_at_once_each_with_its_path() -> None:
    errors = _errors(BROKEN)

    paths = [e.split(":", 1)[0] for e in errors]
    assert "routes[1].action" in paths
    assert "routes[2].routes[0].match.band" in paths
    assert "routes[2].routes[1].match.age_min" in paths
    assert "routes[2].routes[1].card.summary" in paths
    assert "routes[2].routes[1].time_windows" in paths
    assert "routes[2].routes[1].dedupe" in paths
    assert len(errors) == 6
    assert any("hgh" in e and "not declared" in e for e in errors)


def test_a_summary_that_could_reach_140_characters_is_refused() -> None:
    long_summary = "{SCORER} " + "x" * 130
    errors = _errors(f'id: p\nversion: "1"\ndefaults:\n  card: {{summary: "{long_summary}"}}\n')

    assert errors[0].startswith("defaults.card.summary: summary may render to")


def test_a_delay_route_without_a_duration_is_refused() -> None:
    errors = _errors('id: p\nversion: "1"\nroutes:\n  - {match: {scorer: x}, action: delay}\n')

    assert errors == ["routes[0]: a route with action delay needs `delay: {for: ...}`"]


def test_an_escalation_ladder_out_of_order_is_refused() -> None:
    text = """
id: p
version: "1"
routes:
  - action: escalate
    escalation:
      - {role: charge-nurse, channel: pager, after_minutes: 15}
      - {role: nurse, channel: inbox, after_minutes: 0}
"""
    assert _errors(text) == ["routes[0].escalation: escalation steps must be listed in order of after_minutes"]


def test_yaml_that_is_not_a_mapping_is_refused_plainly() -> None:
    assert _errors("- just\n- a list\n") == ["(document): a policy is a mapping with id, version and routes"]


def test_an_unknown_time_zone_and_a_bad_duration_are_both_reported() -> None:
    errors = _errors('id: p\nversion: "1"\ntimezone: Mars/Olympus\ndefaults: {dedup: soon}\n')

    assert [e.split(":", 1)[0] for e in errors] == ["timezone", "defaults.dedup"]


def test_durations_read_as_hours_minutes_or_bare_minutes() -> None:
    document = load_policy('id: p\nversion: "1"\ndefaults: {dedup: 1h30m, lockout: {warning: 90, critical: 2d}}\n')

    assert document.defaults.dedup == timedelta(minutes=90)
    assert document.defaults.lockout is not None
    assert document.defaults.lockout.warning == timedelta(minutes=90)
    assert document.defaults.lockout.critical == timedelta(days=2)


def test_the_content_hash_ignores_formatting_and_comments_but_not_content() -> None:
    one = load_policy('id: p\nversion: "1"\ndefaults: {dedup: 4h}\n')
    same = load_policy('# a comment\nversion: "1"\nid: p\ndefaults:\n  dedup: 240m\n')
    other = load_policy('id: p\nversion: "1"\ndefaults: {dedup: 3h}\n')

    assert one.content_hash() == same.content_hash()
    assert one.content_hash() != other.content_hash()
    assert len(one.content_hash()) == 64


@pytest.mark.parametrize("name", ["deterioration", "surface-all"])
def test_the_bundled_policies_validate(name: str) -> None:
    document = bundled_policy(name)

    assert document.id == name
    assert load_policy(Path(BUNDLED_DIR / f"{name}.yaml")).content_hash() == document.content_hash()
