"""Properties of normalisation: never raises, both validation modes agree, values are finite and canonical."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.observation import Observation as R4BObservation
from hypothesis import HealthCheck, given, settings

from clinical.codes import BY_KIND
from clinical.normalise import normalise_resources
from tests.strategies import mangled_observations, observations

NOW = datetime(2024, 1, 1, tzinfo=UTC)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource=observations())
def test_a_valid_observation_never_raises_and_both_modes_agree(resource: dict[str, Any]) -> None:
    R4BObservation.model_validate(resource)  # the strategy only makes Observations R4B accepts
    fast = normalise_resources([resource], salt="s", now=NOW)
    strict = normalise_resources([resource], salt="s", now=NOW, validation="strict")
    assert fast == strict
    assert fast.issues == ()


@settings(max_examples=150, deadline=None)
@given(resource=observations())
def test_every_usable_value_is_finite_plausible_and_in_the_canonical_unit(resource: dict[str, Any]) -> None:
    for obs in normalise_resources([resource], salt="s", now=NOW).observations:
        if obs.value is None:
            continue
        quantity = BY_KIND[obs.kind]
        assert obs.excluded is None and obs.unit == quantity.unit
        assert math.isfinite(obs.value)
        assert quantity.plausible[0] <= obs.value <= quantity.plausible[1]
        assert obs.effective_utc is not None and obs.effective_utc.tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(resource=mangled_observations())
def test_garbage_in_any_field_becomes_an_issue_or_exclusion_never_an_exception(resource: dict[str, Any]) -> None:
    context = normalise_resources([resource], salt="s", now=NOW)
    assert not any(issue.detail.startswith("unreadable") for issue in context.issues)
    for obs in context.observations:
        assert obs.value is None or math.isfinite(obs.value)
