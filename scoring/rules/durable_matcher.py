"""The durable-rules adapter of the band matcher: every band of every table is one rule, compiled once per rule set.

durable-rules keeps its rule sets and session state in process-global engine memory, so this module owns all of
it: names are unique per rule-set content, a rule set is compiled once and reused, every call runs under one lock
with a fresh session id whose state is deleted afterwards, and nothing is left in the engine between calls.

A band depends on nothing but the rule set, the parameter, the table and the (rounded) value, so each compiled
matcher keeps a bounded memo of the engine's answers: a hook call whose values were all placed before is answered
without the engine, a new value still goes to the engine, and an answer never outlives its matcher (one per
rule-set content).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from durable import engine

from scoring.rules.matcher import Lookup, UnmatchedValueError
from scoring.rules.schema import Band, Parameter, RuleSet

# One lock for the whole engine: its state is global, whichever rule set a call uses.
_ENGINE_LOCK = threading.Lock()
_COMPILED: dict[str, DurableBandMatcher] = {}
# Entries per compiled matcher; the oldest answer is dropped first. Rounded vital signs take a few hundred values per
# parameter, so this holds every value a ward sends while bounding what an adversarial stream can make it keep.
MEMO_LIMIT = 4096

# (parameter, table, type of the value, value): the type keeps True apart from 1 and 1.0, which hash alike.
_MemoKey = tuple[str, int, type, float | str]


class RuleCompileError(ValueError):
    """durable-rules refused the rules generated from a rule set."""


def engine_name(rule_set: RuleSet, content_hash: str) -> str:
    """The engine-wide name: id, version and content hash, so that two versions (or edits) never collide."""
    return f"{rule_set.id}-{rule_set.version}-{content_hash[:16]}"


def compile_rule_set(rule_set: RuleSet, content_hash: str) -> DurableBandMatcher:
    """The compiled matcher for this rule-set content; compiled on first use, reused afterwards."""
    name = engine_name(rule_set, content_hash)
    with _ENGINE_LOCK:
        matcher = _COMPILED.get(name)
        if matcher is None:
            matcher = DurableBandMatcher(name, rule_set)
            _COMPILED[name] = matcher
        return matcher


def _numeric_condition(bands: Sequence[Band], index: int) -> list[dict[str, Any]]:
    # Half-open intervals [min, next band's min): together a partition of the real line, whatever the value.
    conditions: list[dict[str, Any]] = []
    low = bands[index].min
    if low is not None:
        conditions.append({"$gte": {"v": low}})
    if index + 1 < len(bands):
        high = bands[index + 1].min
        conditions.append({"$lt": {"v": high}})
    return conditions


def _coded_condition(codes: Sequence[str]) -> list[dict[str, Any]]:
    if len(codes) == 1:
        return [{"v": codes[0]}]
    return [{"$or": [{"v": code} for code in codes]}]


class DurableBandMatcher:
    """Places values into bands with durable-rules; a `BandMatcher`."""

    def __init__(self, name: str, rule_set: RuleSet) -> None:
        self.name = name
        # Set only while a call holds the engine lock: the rule actions write the matched band here.
        self._hits: dict[str, int] | None = None
        self._memo: dict[_MemoKey, int] = {}
        definition: dict[str, Any] = {}
        for parameter in rule_set.parameters:
            definition.update(self._rules_for(parameter))
        try:
            self._ruleset = engine.Ruleset(name, None, definition)
        except Exception as error:
            raise RuleCompileError(f"durable-rules could not compile rule set {name}: {error}") from error

    def _rules_for(self, parameter: Parameter) -> dict[str, Any]:
        rules: dict[str, Any] = {}
        for table_index, table in enumerate(parameter.all_tables):
            for band_index, band in enumerate(table.bands):
                if band.codes is not None:
                    conditions = _coded_condition(band.codes)
                else:
                    conditions = _numeric_condition(table.bands, band_index)
                selector = [{"p": parameter.name}, {"t": table_index}, *conditions]
                rules[f"{parameter.name}__t{table_index}__b{band_index}"] = {
                    "all": [{"m": {"$and": selector}}],
                    "run": self._recorder(parameter.name, band_index),
                }
        return rules

    def _recorder(self, parameter: str, band_index: int) -> Callable[[Any], None]:
        def record(_closure: Any) -> None:
            if self._hits is not None:
                self._hits[parameter] = band_index

        return record

    def match(self, lookups: Sequence[Lookup]) -> dict[str, int]:
        hits: dict[str, int] = {}
        misses: list[Lookup] = []
        memo = self._memo
        for item in lookups:
            band = memo.get((item.parameter, item.table, type(item.value), item.value))
            if band is None:
                misses.append(item)
            else:
                hits[item.parameter] = band
        if misses:
            answered = self._ask_engine(misses)
            # Only complete answers get here (the engine raised otherwise), so every miss has its band now.
            with _ENGINE_LOCK:
                for item in misses:
                    if len(memo) >= MEMO_LIMIT:
                        del memo[next(iter(memo))]
                    memo[(item.parameter, item.table, type(item.value), item.value)] = answered[item.parameter]
            hits.update(answered)
        return hits

    def _ask_engine(self, lookups: Sequence[Lookup]) -> dict[str, int]:
        """The engine's band for each lookup, in one session."""
        session = uuid.uuid4().hex
        messages = [{"sid": session, "p": item.parameter, "t": item.table, "v": item.value} for item in lookups]
        hits: dict[str, int] = {}
        errors: list[BaseException] = []
        with _ENGINE_LOCK:
            self._hits = hits
            try:
                state = self._ruleset.assert_events(messages)
                self._ruleset.do_actions(state, lambda error, _state: errors.append(error) if error else None)
            except engine.MessageNotHandledException:
                # The engine's message carries the values; ours names only the rule set (no patient data).
                raise UnmatchedValueError(f"rule set {self.name}: a value matched no band") from None
            finally:
                self._hits = None
                self._ruleset.delete_state(session)
        if errors:
            raise errors[0]
        unmatched = sorted({item.parameter for item in lookups} - hits.keys())
        if unmatched:
            raise UnmatchedValueError(f"rule set {self.name}: no band matched for {', '.join(unmatched)}")
        return hits
