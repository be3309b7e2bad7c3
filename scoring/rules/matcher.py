"""The band-matcher port: which band of a parameter's table does a (rounded) value fall in?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol


class Lookup(NamedTuple):
    """One value to place: `table` indexes the parameter's tables; `value` is rounded or a code."""

    parameter: str
    table: int
    value: float | str


class BandMatcher(Protocol):
    def match(self, lookups: Sequence[Lookup]) -> dict[str, int]:
        """The index of the matching band for each looked-up parameter, by parameter name."""
        ...


class UnmatchedValueError(RuntimeError):
    """A value fell through every band: the rule set's coverage check should make this impossible."""
