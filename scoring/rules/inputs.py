"""What a rule scorer reads from a clinical context: the latest usable observation of a kind inside the look-back,
turned into a feature with its provenance, and the hash that identifies the inputs a score was computed from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from clinical.model import ClinicalContext, Observation
from scoring.port import FeatureValue

DEFAULT_LOOKBACK = timedelta(hours=24)


def observation_in_window(
    context: ClinicalContext, kind: str, as_of: datetime, lookback: timedelta
) -> Observation | None:
    """The latest usable observation of `kind` taken in [as_of - lookback, as_of]; older ones count as missing."""
    found = context.latest(kind)
    if found is not None and found.effective_utc is not None and found.effective_utc > as_of:
        # Scoring a past moment (replay, shadow): a later observation must not leak into it.
        earlier = [obs for obs in context.usable(kind) if obs.effective_utc is not None and obs.effective_utc <= as_of]
        found = max(earlier, key=lambda obs: obs.effective_utc or as_of, default=None)
    if found is None or found.effective_utc is None or found.effective_utc < as_of - lookback:
        return None
    return found


def feature_of(name: str, observation: Observation) -> FeatureValue:
    value: float | str | None = observation.code_value if observation.code_value is not None else observation.value
    return FeatureValue(
        name=name,
        value=value,
        unit=observation.unit,
        observed_utc=observation.effective_utc,
        provenance=observation.provenance,
    )


def _utc_text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    # The same instant written with another offset is the same input.
    return (moment.astimezone(UTC) if moment.tzinfo is not None else moment).isoformat()


def _canonical(feature: FeatureValue) -> dict[str, Any]:
    provenance = feature.provenance
    return {
        "value": feature.value,
        "unit": feature.unit,
        "observed_utc": _utc_text(feature.observed_utc),
        "provenance": None
        if provenance is None
        else {
            "resource_type": provenance.resource_type,
            "resource_id": provenance.resource_id,
            "version_id": provenance.version_id,
            "source_system": provenance.source_system,
        },
    }


def input_hash(features: Mapping[str, FeatureValue]) -> str:
    """sha256 over the canonical JSON (sorted keys, no spaces) of every feature used, missing ones as null."""
    document = {name: _canonical(feature) for name, feature in features.items()}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
