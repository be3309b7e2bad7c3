"""The muting mechanisms, each a pure check over facts and state: inhibition, silence, lockout, snooze, dedup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from policy.document import InhibitRule, Lockout
from policy.events import AlertSurfaced
from policy.matching import CompiledMatch, Facts
from policy.port import Reason
from policy.silences import silence_mutes
from policy.state import PolicyState
from scoring.port import RiskOutput

# Ranks for bands a policy does not declare under `scorers`: higher is more severe.
DEFAULT_BAND_RANK: Mapping[str, int] = {
    "negative": 0,
    "low": 0,
    "low-medium": 1,
    "moderate": 2,
    "medium": 2,
    "positive": 2,
    "high": 3,
}


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert currently firing for the patient: a sibling output of this hook call, or an active alert."""

    scorer: str
    band: str
    encounter_id: str | None
    origin: str


@dataclass(frozen=True, slots=True)
class CompiledInhibition:
    name: str
    rule: InhibitRule
    source: CompiledMatch
    target: CompiledMatch


def compile_inhibitions(rules: Sequence[InhibitRule]) -> tuple[CompiledInhibition, ...]:
    return tuple(
        CompiledInhibition(r.name or f"inhibit_rules[{i}]", r, CompiledMatch(r.source), CompiledMatch(r.target))
        for i, r in enumerate(rules)
    )


def firing_alerts(
    output: RiskOutput,
    siblings: Sequence[RiskOutput],
    state: PolicyState,
    patient: str | None,
    encounter_id: str | None,
    now: datetime,
) -> list[Firing]:
    firing = [Firing(s.scorer_id, s.band, encounter_id, "this call") for s in siblings if s is not output]
    if patient is not None:
        firing.extend(
            Firing(a.scorer, a.band, a.encounter_id, f"alert at {a.at.isoformat()}")
            for a in state.active_alerts(patient, now)
            if a.alert_key != output.scorer_id
        )
    return firing


def inhibited_by(
    rules: Sequence[CompiledInhibition], facts: Facts, firing: Sequence[Firing], encounter_id: str | None
) -> tuple[CompiledInhibition, str] | None:
    """The first of `rules` (those whose target this output matches) that mutes it, with what set it off."""
    for rule in rules:
        if not rule.source.output_labels:
            # A source that names no scorer or band is a fact about the patient, such as comfort care.
            if rule.source.matches(facts):
                return rule, "patient context"
            continue
        for alert in firing:
            if "encounter" in rule.rule.equal and alert.encounter_id != encounter_id:
                continue
            labels = {**facts.labels, "scorer": alert.scorer, "band": alert.band}
            if rule.source.matches(facts.relabelled(labels)):
                return rule, f"{alert.scorer} {alert.band} ({alert.origin})"
    return None


def silenced_by(
    state: PolicyState, facts: Facts, patient: str | None, unit_id: str | None, now: datetime
) -> str | None:
    for silence in sorted(state.silences(now), key=lambda s: s.silence_id):
        if silence_mutes(silence, facts, patient=patient, unit_id=unit_id):
            return f"silence {silence.silence_id} by {silence.author} until {silence.ends_at.isoformat()}"
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A mechanism's answer: mute with `reason`, or let through (possibly with a reason to add)."""

    mute: bool
    reason: Reason | None
    detail: str


def lockout_verdict(
    state: PolicyState,
    patient: str,
    key: str,
    rank: int,
    band_rank: Mapping[str, int],
    lockout: Lockout | None,
    now: datetime,
) -> Verdict | None:
    dismissal = state.last_dismissal(patient, key)
    if dismissal is None or lockout is None:
        return None
    window = lockout.for_indicator(dismissal.indicator)
    if window is None or now >= dismissal.at + window:
        return None
    until = (dismissal.at + window).isoformat()
    # A dismissal of a milder alert must not hide a worse one: a worsened band breaks through the lockout.
    if rank > band_rank.get(dismissal.band, 0):
        return Verdict(
            False, Reason.WORSENED, f"locked out until {until}, but worse than the dismissed {dismissal.band}"
        )
    return Verdict(True, Reason.LOCKED_OUT, f"{dismissal.indicator.value} card dismissed; locked out until {until}")


def snooze_verdict(state: PolicyState, patient: str, key: str, now: datetime) -> Verdict | None:
    snooze = state.last_snooze(patient, key)
    if snooze is None:
        return None
    if now < snooze.until:
        return Verdict(True, Reason.SNOOZED, f"snoozed until {snooze.until.isoformat()}")
    shown = state.last_surfaced(patient, key)
    # Expired and not shown since: the alert comes back even inside its dedup window.
    if shown is None or shown.at <= snooze.at:
        return Verdict(False, Reason.SNOOZE_EXPIRED, f"snooze expired at {snooze.until.isoformat()}")
    return None


def dedup_verdict(
    last: AlertSurfaced | None, rank: int, band_rank: Mapping[str, int], window_end: datetime | None, now: datetime
) -> Verdict | None:
    if last is None or window_end is None or now >= window_end:
        return None
    if rank > band_rank.get(last.band, 0):
        return Verdict(False, Reason.WORSENED, f"shown as {last.band} at {last.at.isoformat()}; band worsened")
    return Verdict(
        True, Reason.DUPLICATE, f"shown as {last.band} at {last.at.isoformat()}; quiet until {window_end.isoformat()}"
    )
