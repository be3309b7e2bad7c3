"""The durable-rules adapter: compiled once per rule-set content, unique engine names, no state kept between
calls, safe under threads, and every value placed in the band whose printed range holds it."""

from __future__ import annotations

import functools
import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.rules import BUNDLED_DIRECTORY, RuleScorer, load_rule_set, read_rule_set
from scoring.rules.durable_matcher import DurableBandMatcher, compile_rule_set, engine_name
from scoring.rules.matcher import Lookup
from scoring.rules.rounding import round_half_up
from scoring.rules.schema import RuleSet
from tests.unit.scoring.rules.builders import AS_OF, news2_context


def test_the_same_rule_set_is_compiled_once_and_reused() -> None:
    rule_set, content_hash = read_rule_set(BUNDLED_DIRECTORY / "news2.yaml")
    assert compile_rule_set(rule_set, content_hash) is compile_rule_set(rule_set, content_hash)


def test_an_edited_rule_set_gets_its_own_engine_name_and_both_versions_work(tmp_path: Path) -> None:
    text = (BUNDLED_DIRECTORY / "news2.yaml").read_text(encoding="utf-8")
    edited = text.replace("{min: 220, points: 3}", "{min: 220, points: 2}")
    assert edited != text
    (tmp_path / "news2.yaml").write_text(edited, encoding="utf-8")
    original = load_rule_set(BUNDLED_DIRECTORY / "news2.yaml")
    changed = load_rule_set(tmp_path / "news2.yaml")
    assert original.version != changed.version
    assert original.version.split("+")[0] == changed.version.split("+")[0]
    context = news2_context(sbp=230)
    assert original.score(context, AS_OF)[0].score == 3
    assert changed.score(context, AS_OF)[0].score == 2


def test_engine_names_carry_id_version_and_content_hash() -> None:
    rule_set, content_hash = read_rule_set(BUNDLED_DIRECTORY / "qsofa.yaml")
    assert engine_name(rule_set, content_hash) == f"qsofa-{rule_set.version}-{content_hash[:16]}"


def test_no_session_state_is_left_in_the_engine_after_a_call(
    news2: RuleScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = uuid.uuid4()
    monkeypatch.setattr("scoring.rules.durable_matcher.uuid", SimpleNamespace(uuid4=lambda: session))
    matcher = compile_rule_set(news2.rule_set, news2.content_hash)
    assert matcher.match([Lookup("resp_rate", 0, 30.0)]) == {"resp_rate": 4}
    with pytest.raises(Exception, match="Could not get state"):
        matcher._ruleset.get_state(session.hex)


def test_repeated_calls_give_the_same_answer(news2: RuleScorer) -> None:
    context = news2_context(resp_rate=25, consciousness="C")
    outputs = [news2.score(context, AS_OF)[0] for _ in range(50)]
    assert {(output.score, output.band, output.input_hash) for output in outputs} == {
        (6.0, "medium", outputs[0].input_hash)
    }


def test_concurrent_scoring_from_threads_matches_serial_scoring(news2: RuleScorer) -> None:
    contexts = [news2_context(heart_rate=rate, resp_rate=8 + rate % 20) for rate in range(30, 160)]
    serial = [news2.score(context, AS_OF)[0].score for context in contexts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda context: news2.score(context, AS_OF)[0].score, contexts * 4))
    assert threaded == serial * 4


@functools.cache
def _bundled(file_name: str) -> tuple[RuleSet, str]:
    return read_rule_set(BUNDLED_DIRECTORY / file_name)


def _numeric_tables() -> list[tuple[str, int, int]]:
    found = []
    for path in sorted(BUNDLED_DIRECTORY.glob("*.yaml")):
        rule_set, _ = _bundled(path.name)
        for parameter in rule_set.parameters:
            for index, table in enumerate(parameter.all_tables):
                if not table.coded:
                    found.append((path.name, rule_set.parameters.index(parameter), index))
    return found


@settings(max_examples=300, deadline=None)
@given(
    where=st.sampled_from(_numeric_tables()),
    value=st.floats(min_value=-1000, max_value=1000, allow_nan=False, allow_infinity=False),
)
def test_every_value_lands_in_the_one_band_whose_printed_range_holds_it(
    where: tuple[str, int, int], value: float
) -> None:
    file_name, parameter_index, table_index = where
    rule_set, content_hash = _bundled(file_name)
    matcher: DurableBandMatcher = compile_rule_set(rule_set, content_hash)
    parameter = rule_set.parameters[parameter_index]
    rounded = round_half_up(value, parameter.precision)
    band = parameter.all_tables[table_index].bands[
        matcher.match([Lookup(parameter.name, table_index, rounded)])[parameter.name]
    ]
    low = band.min if band.min is not None else -math.inf
    high = band.max if band.max is not None else math.inf
    assert low <= rounded <= high


def _counting(matcher: DurableBandMatcher, monkeypatch: pytest.MonkeyPatch) -> list[list[Lookup]]:
    """Every batch of lookups the engine is asked about, in order."""
    asked: list[list[Lookup]] = []
    ask = matcher._ask_engine

    def spy(lookups: list[Lookup]) -> dict[str, int]:
        asked.append(list(lookups))
        return ask(lookups)

    monkeypatch.setattr(matcher, "_ask_engine", spy)
    return asked


def _fresh_matcher(name: str = "news2") -> DurableBandMatcher:
    rule_set, content_hash = read_rule_set(BUNDLED_DIRECTORY / f"{name}.yaml")
    # A matcher of its own (not the shared compiled one), so that its memo starts empty.
    return DurableBandMatcher(f"{engine_name(rule_set, content_hash)}-{uuid.uuid4().hex[:8]}", rule_set)


def test_the_engine_places_a_value_seen_for_the_first_time_and_only_that_value(monkeypatch: pytest.MonkeyPatch) -> None:
    matcher = _fresh_matcher()
    asked = _counting(matcher, monkeypatch)
    assert matcher.match([Lookup("resp_rate", 0, 30.0), Lookup("pulse", 0, 88.0)]) == {"resp_rate": 4, "pulse": 2}
    assert matcher.match([Lookup("resp_rate", 0, 30.0), Lookup("pulse", 0, 88.0)]) == {"resp_rate": 4, "pulse": 2}
    assert matcher.match([Lookup("resp_rate", 0, 30.0), Lookup("pulse", 0, 135.0)]) == {"resp_rate": 4, "pulse": 5}
    assert asked == [
        [Lookup("resp_rate", 0, 30.0), Lookup("pulse", 0, 88.0)],
        [Lookup("pulse", 0, 135.0)],
    ]


def test_remembered_answers_are_kept_apart_by_table_and_by_the_value_type(monkeypatch: pytest.MonkeyPatch) -> None:
    matcher = _fresh_matcher()
    asked = _counting(matcher, monkeypatch)
    scale1 = matcher.match([Lookup("spo2", 0, 90.0)])
    scale2 = matcher.match([Lookup("spo2", 1, 90.0)])
    assert scale1 != scale2  # 90 % is the lowest band on scale 1, not on scale 2: a memo keyed without the table lies
    assert matcher.match([Lookup("spo2", 0, 90.0)]) == scale1
    assert matcher.match([Lookup("spo2", 1, 90.0)]) == scale2
    matcher.match([Lookup("spo2", 0, 90)])  # an int equal to a remembered float is still asked about
    assert len(asked) == 3


def test_an_edited_rule_set_never_gets_the_answers_of_the_original(tmp_path: Path) -> None:
    text = (BUNDLED_DIRECTORY / "news2.yaml").read_text(encoding="utf-8")
    edited_text = text.replace("{min: 111, max: 219, points: 0}", "{min: 111, max: 199, points: 0}").replace(
        "{min: 220, points: 3}", "{min: 200, points: 3}"
    )
    (tmp_path / "news2.yaml").write_text(edited_text, "utf-8")
    original = compile_rule_set(*read_rule_set(BUNDLED_DIRECTORY / "news2.yaml"))
    edited = compile_rule_set(*read_rule_set(tmp_path / "news2.yaml"))
    assert original is not edited
    for _ in range(2):  # the second round is answered from each matcher's memo
        assert original.match([Lookup("sbp", 0, 210.0)]) == {"sbp": 3}
        assert edited.match([Lookup("sbp", 0, 210.0)]) == {"sbp": 4}


def test_the_memo_of_answers_is_bounded_and_forgotten_values_go_back_to_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("scoring.rules.durable_matcher.MEMO_LIMIT", 8)
    matcher = _fresh_matcher()
    asked = _counting(matcher, monkeypatch)
    for value in range(20):
        matcher.match([Lookup("pulse", 0, float(value + 40))])
    assert len(matcher._memo) == 8
    matcher.match([Lookup("pulse", 0, 40.0)])  # the oldest answer was dropped first
    assert len(asked) == 21
    matcher.match([Lookup("pulse", 0, 59.0)])  # the newest is still remembered
    assert len(asked) == 21


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(min_value=-50, max_value=400), min_size=1, max_size=30))
def test_remembered_answers_are_the_engines_answers(values: list[int]) -> None:
    matcher = _shared_fresh_matcher()
    for value in values:
        lookup = [Lookup("sbp", 0, float(value))]
        first = matcher.match(lookup)
        assert matcher.match(lookup) == first == matcher._ask_engine(lookup)


@functools.cache
def _shared_fresh_matcher() -> DurableBandMatcher:
    return _fresh_matcher()
