"""The route tree: compiled once with inherited settings, walked per decision as Alertmanager walks its routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from policy.document import CardTemplate, DelaySpec, Lockout, Match, PolicyDocument, Route, RouteSettings
from policy.matching import CompiledMatch, Facts
from policy.port import Action, EscalationStep, Indicator, Reason
from policy.trace import RouteAttempt

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Settings:
    """A route's settings after inheritance: its own where set, otherwise its parent's, down from `defaults`."""

    action: Action
    reason: Reason | None
    indicator: Indicator | None
    card: CardTemplate | None
    dedup: timedelta | None
    lockout: Lockout | None
    delay: DelaySpec | None
    escalation: tuple[EscalationStep, ...]
    budget: bool
    time_windows: tuple[str, ...]


# What a policy without `defaults` does: surface, with the band's indicator, counted against the budget.
_BASE = Settings(Action.SURFACE, None, None, None, None, None, None, (), True, ())


def _pick(own: _T | None, inherited: _T) -> _T:
    return own if own is not None else inherited


def _inherit(parent: Settings, own: RouteSettings) -> Settings:
    ladder = (
        tuple(EscalationStep(s.role, s.channel, s.after_minutes) for s in own.escalation)
        if own.escalation is not None
        else parent.escalation
    )
    return Settings(
        action=_pick(own.action, parent.action),
        reason=_pick(own.reason, parent.reason),
        indicator=_pick(own.indicator, parent.indicator),
        card=_pick(own.card, parent.card),
        dedup=_pick(own.dedup, parent.dedup),
        lockout=_pick(own.lockout, parent.lockout),
        delay=_pick(own.delay, parent.delay),
        escalation=ladder,
        budget=_pick(own.budget, parent.budget),
        time_windows=_pick(tuple(own.time_windows) if own.time_windows is not None else None, parent.time_windows),
    )


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    route_id: str
    path: str
    match: CompiledMatch
    continue_: bool
    settings: Settings
    children: tuple[CompiledRoute, ...]


def _compile(route: Route, path: str, parent: Settings) -> CompiledRoute:
    settings = _inherit(parent, route)
    children = tuple(_compile(c, f"{path}.routes[{i}]", settings) for i, c in enumerate(route.routes))
    return CompiledRoute(
        route_id=route.name or path,
        path=path,
        match=CompiledMatch(route.match),
        continue_=route.continue_,
        settings=settings,
        children=children,
    )


def compile_routes(document: PolicyDocument) -> CompiledRoute:
    """The root route carries the defaults and matches everything; the document's routes are its children."""
    root_settings = _inherit(_BASE, document.defaults)
    children = tuple(_compile(r, f"routes[{i}]", root_settings) for i, r in enumerate(document.routes))
    return CompiledRoute("root", "root", CompiledMatch(Match()), False, root_settings, children)


def _walk(node: CompiledRoute, facts: Facts, attempts: list[RouteAttempt]) -> list[CompiledRoute]:
    matched: list[CompiledRoute] = []
    for child in node.children:
        # The first matcher that fails is the answer to "why not this route"; the rest are not evaluated.
        failures = child.match.failures(facts, first_only=True)
        attempts.append(RouteAttempt(child.route_id, child.path, not failures, tuple(failures)))
        if failures:
            continue
        # The deepest matching route takes the output; a route none of whose children match takes it itself.
        matched.extend(_walk(child, facts, attempts) or [child])
        # First match wins among siblings unless the matching route says `continue`.
        if not child.continue_:
            break
    return matched


def route(root: CompiledRoute, facts: Facts) -> tuple[list[CompiledRoute], list[RouteAttempt]]:
    """Every route that takes the output, in tree order (the root when none does), and every route tried."""
    attempts: list[RouteAttempt] = []
    return _walk(root, facts, attempts) or [root], attempts


class RouteMemo(Generic[_T]):
    """`route`, and what `derive` makes of its answer, remembered by the facts the tree's matchers read: matching
    is pure, so equal reads give one answer. Replay asks the same few questions hundreds of thousands of times.
    """

    def __init__(
        self,
        root: CompiledRoute,
        derive: Callable[[list[CompiledRoute], list[RouteAttempt]], _T],
        *,
        limit: int = 4096,
    ) -> None:
        self.root = root
        self._derive = derive
        reads: set[str] = set()
        pending = [root]
        while pending:
            node = pending.pop()
            reads |= node.match.reads
            pending.extend(node.children)
        self._labels = tuple(sorted(r.removeprefix("labels.") for r in reads if r.startswith("labels.")))
        self._attrs = tuple(sorted(r for r in reads if not r.startswith("labels.")))
        # A label the facts do not carry reads as "", as the matchers read it.
        self._blanks = ("",) * len(self._labels)
        self._limit = limit
        self._cache: dict[tuple[object, ...], _T] = {}

    def __call__(self, facts: Facts) -> _T:
        # Values with their type: 65 and 65.0 match alike but a failure sentence prints them differently.
        values = [(type(v), v) for v in map(facts.__getattribute__, self._attrs)]
        key = (*map(facts.labels.get, self._labels, self._blanks), *values)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._derive(*route(self.root, facts))
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[key] = hit
        return hit
