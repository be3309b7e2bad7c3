"""What a rule scorer reads from a clinical context: the latest usable observation of a kind inside the look-back,
turned into a feature with its provenance, and the hash that identifies the inputs a score was computed from."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from clinical.model import ClinicalContext, Observation
from scoring.port import FeatureValue

DEFAULT_LOOKBACK = timedelta(hours=24)
# json's own string writer (ASCII, with escapes), so that strings are written exactly as json.dumps writes them.
_json_string = json.encoder.encode_basestring_ascii


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


def _canonical_text(features: Mapping[str, FeatureValue]) -> str:
    document = {name: _canonical(feature) for name, feature in features.items()}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class _UnwrittenError(Exception):
    """A value of a type the direct writer leaves to json.dumps."""


def _string(value: str | None) -> str:
    if value is None:
        return "null"
    try:
        # json's own writer for str (and str subclasses, as json.dumps writes them); anything else is refused.
        return _json_string(value)
    except TypeError:
        raise _UnwrittenError from None


def feature_text(feature: FeatureValue) -> str:
    """The canonical JSON of one feature, exactly as json.dumps(sort_keys=True) writes it in `input_hash`.

    Raises _UnwrittenError for a value it does not write itself; `input_hash` then leaves it all to json.dumps.
    """
    value = feature.value
    if value is None:
        value_text = "null"
    elif isinstance(value, float) and type(value) is float:
        if not math.isfinite(value):
            raise _UnwrittenError  # json.dumps refuses it, with its own message
        value_text = float.__repr__(value)
    elif isinstance(value, str) and type(value) is str:
        value_text = _json_string(value)
    else:
        raise _UnwrittenError  # ints, bools and subclasses: json.dumps knows their forms
    moment = feature.observed_utc
    if moment is None:
        observed = "null"
    else:
        # isoformat() writes only digits, "-", ":", ".", "+" and "T": nothing JSON escapes.
        observed = '"' + (moment.astimezone(UTC) if moment.tzinfo is not None else moment).isoformat() + '"'
    provenance = feature.provenance
    if provenance is None:
        provenance_text = "null"
    else:
        provenance_text = (
            f'{{"resource_id":{_string(provenance.resource_id)},'
            f'"resource_type":{_string(provenance.resource_type)},'
            f'"source_system":{_string(provenance.source_system)},'
            f'"version_id":{_string(provenance.version_id)}}}'
        )
    unit = _string(feature.unit)
    return f'{{"observed_utc":{observed},"provenance":{provenance_text},"unit":{unit},"value":{value_text}}}'


def input_hash(
    features: Mapping[str, FeatureValue], known: Mapping[int, tuple[FeatureValue, str]] | None = None
) -> str:
    """sha256 over the canonical JSON (sorted keys, no spaces) of every feature used, missing ones as null.

    `known` may hold the text of features a caller reuses on every call (by id, with the feature itself, which
    keeps the id from being reused and is checked to be the very same object).
    """
    # Written directly, as json.dumps of the canonical document would write it (a test holds the two equal): this
    # runs for every rule score of every hook call, and building the document first cost more than the score.
    try:
        parts = []
        for name in sorted(features):
            if type(name) is not str:
                raise _UnwrittenError
            feature = features[name]
            entry = None if known is None else known.get(id(feature))
            text = entry[1] if entry is not None and entry[0] is feature else feature_text(feature)
            parts.append(f"{_json_string(name)}:{text}")
        text = "{" + ",".join(parts) + "}"
    except Exception:
        # json.dumps is the definition: it writes what the direct writer could not, or refuses it in its own words.
        text = _canonical_text(features)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
