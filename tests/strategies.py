"""Hypothesis strategies shared by the test suites: FHIR R4 resources, unit conversions and model-feature grids."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from clinical.codes import CONSCIOUSNESS_LOINC, QUANTITIES
from clinical.conditions import FLAG_CODE_VALUES

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# Units a sender may use for a kind, all convertible into the kind's canonical unit.
ALTERNATIVE_UNITS: dict[str, tuple[str, ...]] = {
    "temperature": ("Cel", "[degF]", "K"),
    "body_weight": ("kg", "[lb_av]", "g"),
    "body_height": ("cm", "[in_i]", "m"),
    "heart_rate": ("/min", "{beats}/min"),
    "resp_rate": ("/min", "{breaths}/min"),
    "glucose": ("mg/dL", "mmol/L"),
    "creatinine": ("mg/dL", "umol/L"),
    "hgb": ("g/dL", "g/L"),
    "wbc": ("10*3/uL", "10*9/L"),
    "fio2": ("%",),
}

# Pairs of units of the same quantity for round-trip properties, with the kind that supplies a molar mass.
CONVERTIBLE_PAIRS: tuple[tuple[str, str, str | None], ...] = (
    ("[degF]", "Cel", None),
    ("[lb_av]", "kg", None),
    ("[in_i]", "cm", None),
    ("g/L", "g/dL", None),
    ("10*3/uL", "10*9/L", None),
    ("{beats}/min", "/min", None),
    ("mg/dL", "mmol/L", "glucose"),
    ("mg/dL", "umol/L", "creatinine"),
    ("mg/dL", "mmol/L", "bun"),
    ("mg/dL", "mmol/L", "calcium"),
    ("mg/dL", "mmol/L", "magnesium"),
    ("mg/dL", "mmol/L", "phosphate"),
    ("mg/dL", "umol/L", "bilirubin_total"),
    ("mmol/L", "mg/dL", "lactate"),
)

fhir_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,24}", fullmatch=True)
statuses = st.sampled_from(
    ["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"]
)
# Finite decimals, including the huge and tiny magnitudes FHIR allows (the spec's own examples use 1e245).
decimals = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.sampled_from([1e245, -1e245, 1e-245, 0.0, 1e18]),
    st.integers(min_value=-(10**6), max_value=10**6),
)


@st.composite
def fhir_datetimes(draw: st.DrawFn) -> str:
    """FHIR dateTime strings: partial dates, dates, and times with Z or an offset."""
    year = draw(st.integers(1900, 2100))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    shape = draw(st.sampled_from(["year", "month", "date", "z", "offset"]))
    if shape == "year":
        return f"{year:04d}"
    if shape == "month":
        return f"{year:04d}-{month:02d}"
    if shape == "date":
        return f"{year:04d}-{month:02d}-{day:02d}"
    clock = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:{draw(st.integers(0, 59)):02d}"
    zone = "Z" if shape == "z" else draw(st.sampled_from(["+01:00", "-04:00", "+10:00", "+00:00"]))
    return f"{year:04d}-{month:02d}-{day:02d}T{clock}{zone}"


@st.composite
def quantities(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    """A UCUM Quantity with a unit suitable for `kind` (or any canonical unit)."""
    if kind is None:
        unit = draw(st.sampled_from(sorted({q.unit for q in QUANTITIES})))
    else:
        unit = draw(st.sampled_from(ALTERNATIVE_UNITS.get(kind, (_canonical(kind),))))
    return {"value": draw(decimals), "unit": unit, "system": UCUM, "code": unit}


@st.composite
def observations(draw: st.DrawFn) -> dict[str, Any]:
    """Valid R4 Observations of a known quantity, optionally as a panel component, with absent data or not."""
    quantity = draw(st.sampled_from(QUANTITIES))
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": draw(fhir_ids),
        "status": draw(statuses),
        "code": {"coding": [{"system": LOINC, "code": quantity.loinc}]},
    }
    if draw(st.booleans()):
        resource["meta"] = {"versionId": draw(fhir_ids), "source": "https://ehr.example.org/fhir"}
    if draw(st.booleans()):
        resource["category"] = [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ]
    when = draw(st.sampled_from(["effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued", None]))
    moment = draw(fhir_datetimes())
    if when == "effectivePeriod":
        resource["effectivePeriod"] = {"start": moment}
    elif when in ("effectiveInstant", "issued"):
        resource[when] = moment if "T" in moment else f"{moment[:4]}-01-01T00:00:00Z"
    elif when is not None:
        resource[when] = moment
    element: dict[str, Any] = resource
    if draw(st.booleans()):
        resource["code"] = {"coding": [{"system": LOINC, "code": "85354-9"}]}
        element = {"code": {"coding": [{"system": LOINC, "code": quantity.loinc}]}}
        resource["component"] = [element]
    if draw(st.booleans()):
        element["valueQuantity"] = draw(quantities(quantity.kind))
    else:
        element["dataAbsentReason"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}]
        }
    return resource


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
# Any JSON shape, to fuzz the fast path with garbage where it expects a field.
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)


@st.composite
def mangled_observations(draw: st.DrawFn) -> dict[str, Any]:
    """A valid Observation with one or two elements replaced by arbitrary JSON."""
    resource = draw(observations())
    targets = [
        "status",
        "code",
        "valueQuantity",
        "component",
        "effectiveDateTime",
        "effectivePeriod",
        "meta",
        "category",
        "dataAbsentReason",
        "id",
        "issued",
        "valueCodeableConcept",
    ]
    for key in draw(st.lists(st.sampled_from(targets), min_size=1, max_size=2)):
        resource[key] = draw(json_values)
    return resource


# Values next to what the plain-Observation reader accepts: edges of a kind's range, non-finite and non-numbers.
_near_plain_values = st.one_of(
    decimals,
    st.sampled_from([True, False, None, "88", float("inf"), float("-inf"), float("nan"), 10**400, -0.0, 2**53 + 1]),
    st.sampled_from(sorted({bound for q in QUANTITIES for bound in q.plausible})),
)


# A Coding an EHR may send beside (or before) the LOINC one: its own code, another LOINC code (a plain one, one read
# by more than its code, a consciousness answer's), a code that may raise a care flag, or not a Coding at all.
_other_codings = st.one_of(
    st.fixed_dictionaries(
        {
            "system": st.sampled_from([LOINC, "http://snomed.info/sct", "urn:oid:1.2.840.114350"]),
            "code": st.one_of(
                st.text(max_size=9),
                st.sampled_from([q.loinc for q in QUANTITIES]),
                st.sampled_from(["2708-6", "59408-5", CONSCIOUSNESS_LOINC, *sorted(FLAG_CODE_VALUES)]),
            ),
        }
    ),
    json_values,
)


@st.composite
def near_plain_observations(draw: st.DrawFn) -> dict[str, Any]:
    """Observations of the commonest shape (one LOINC code, a value in the canonical UCUM unit), each element of
    that shape perhaps changed to something just outside it."""
    quantity = draw(st.sampled_from(QUANTITIES))
    low, high = quantity.plausible
    value = draw(st.one_of(st.floats(low, high), st.integers(math.ceil(low), math.floor(high)), _near_plain_values))
    value_quantity: dict[str, Any] = {"value": value, "system": UCUM, "code": quantity.unit}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": draw(fhir_ids),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": draw(st.sampled_from([quantity.loinc, *quantity.also]))}]},
        "effectiveDateTime": draw(fhir_datetimes()),
        "valueQuantity": value_quantity,
    }
    # The Coding list and its LOINC Coding as built: a change may replace the whole code, and later ones still apply.
    codings = resource["code"]["coding"]
    loinc_coding = codings[0]
    changes: dict[str, Callable[[], None]] = {
        "status": lambda: resource.update(status=draw(st.one_of(statuses, json_values))),
        "code": lambda: resource.update(code=draw(json_values)),
        "coding": lambda: codings.append(draw(_other_codings)),
        "coding_first": lambda: codings.insert(0, draw(_other_codings)),
        "loinc": lambda: loinc_coding.update(
            code=draw(st.one_of(st.sampled_from(["2708-6", "3150-0", "3151-8", "67775-7", "75320-2"]), json_values))
        ),
        "system": lambda: loinc_coding.update(system=draw(json_values)),
        "time": lambda: resource.update(effectiveDateTime=draw(st.one_of(st.text(max_size=12), json_values))),
        "unit": lambda: value_quantity.update(code=draw(st.sampled_from(["[degF]", "mmol/L", "/min", "%", "1"]))),
        "unit_system": lambda: value_quantity.update(system=draw(json_values)),
        "quantity": lambda: resource.update(valueQuantity=draw(json_values)),
        "extra": lambda: resource.update(
            {draw(st.sampled_from(["component", "dataAbsentReason", "hasMember"])): draw(json_values)}
        ),
    }
    for change in draw(st.lists(st.sampled_from(sorted(changes)), max_size=2)):
        changes[change]()
    return resource


@st.composite
def multi_coded_observations(draw: st.DrawFn) -> dict[str, Any]:
    """A near-plain Observation with one to three more Codings, each before or after the ones it has."""
    resource = draw(near_plain_observations())
    code = resource.get("code")
    if type(code) is dict and type(code.get("coding")) is list:
        for other in draw(st.lists(_other_codings, min_size=1, max_size=3)):
            code["coding"].insert(draw(st.integers(0, len(code["coding"]))), other)
    return resource


def _canonical(kind: str) -> str:
    return next(q.unit for q in QUANTITIES if q.kind == kind)


@st.composite
def hourly_grids(draw: st.DrawFn, kinds: int) -> Any:
    """A model-feature grid of 1-4 stays of 1-30 consecutive hours, values sparse (NaN = not measured)."""
    import numpy as np

    from scoring.features.grid import HourlyGrid

    lengths = draw(st.lists(st.integers(1, 30), min_size=1, max_size=4))
    rows = sum(lengths)
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    rng = np.random.default_rng(seed)
    values = rng.normal(100.0, 30.0, size=(rows, kinds))
    values[rng.random((rows, kinds)) >= density] = np.nan
    first_hours = draw(st.lists(st.integers(1, 5), min_size=len(lengths), max_size=len(lengths)))
    hours = np.concatenate([np.arange(f, f + n) for f, n in zip(first_hours, lengths, strict=True)])
    starts = np.cumsum([0, *lengths[:-1]]).astype(np.int64)
    n = len(lengths)
    return HourlyGrid(
        values,
        hours.astype(np.int64),
        starts,
        tuple(f"s{i}" for i in range(n)),
        rng.uniform(18, 90, n),
        rng.integers(0, 2, n).astype(float),
        -rng.uniform(0, 100, n),
    )


@st.composite
def byte_mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` after one to three random edits (bit flip, replaced, inserted or deleted byte, truncation);
    never equal to `original`, so a property over it never tests the unchanged input."""
    mutated = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["flip", "replace", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(mutated) - 1, 0)))
        if edit == "insert" or not mutated:
            mutated.insert(at, draw(st.integers(0, 255)))
        elif edit == "flip":
            mutated[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "replace":
            mutated[at] = draw(st.integers(0, 255))
        elif edit == "delete":
            del mutated[at]
        else:
            del mutated[at:]
    if bytes(mutated) == original:
        mutated.append(ord("."))
    return bytes(mutated)


# Context values as an EHR might send them, rich in the characters that carry meaning in a URL or a FHIR search.
url_hostile_text = st.one_of(
    st.text(st.sampled_from("&=,|$/?#%+ .:;[]'\"\\aZ9é\u00a0\U0001f600"), min_size=1, max_size=12),
    st.text(min_size=1),
)


# Policy layer: risk outputs, policy contexts and histories of what happened before a decision.
POLICY_BANDS: dict[str, tuple[str, ...]] = {
    "news2": ("low", "low-medium", "medium", "high", "no-data"),
    "qsofa": ("negative", "positive", "no-data"),
    "sirs": ("negative", "positive"),
    "sepsis-hgb": ("low", "moderate", "high"),
}


@st.composite
def risk_outputs(draw: st.DrawFn) -> Any:
    """Risk outputs of the bundled scorers in any of their bands (a no-data band has no score)."""
    from datetime import UTC, datetime

    from scoring.port import RiskOutput

    scorer = draw(st.sampled_from(sorted(POLICY_BANDS)))
    band = draw(st.sampled_from(POLICY_BANDS[scorer]))
    missing = tuple(draw(st.lists(st.sampled_from(["resp_rate", "spo2", "temperature", "gcs"]), max_size=2)))
    return RiskOutput(
        scorer_id=scorer,
        scorer_version="1",
        score=None if band == "no-data" else draw(st.integers(0, 20)),
        band=band,
        as_of=datetime(2026, 1, 14, tzinfo=UTC),
        input_hash=f"{draw(st.integers(0, 2**32)):064x}",
        partial=bool(missing),
        missing=missing,
    )


@st.composite
def policy_contexts(draw: st.DrawFn) -> Any:
    """Contexts of a hook call: a few patients and units, with or without comfort care, antibiotics, windows."""
    from policy.context import PatientFacts, PolicyContext, UnitFacts

    return PolicyContext(
        hook=draw(st.sampled_from(["patient-view", "order-select"])),
        role=draw(st.sampled_from(["nurse", "physician"])),
        unit=UnitFacts(
            unit_id=draw(st.sampled_from(["4N", "ICU1"])),
            unit_type=draw(st.sampled_from(["ward", "icu", "ed", "unknown"])),
            census=draw(st.none() | st.integers(0, 40)),
        ),
        patient=PatientFacts(
            key=draw(st.sampled_from(["p1", "p2", None])),
            age_years=draw(st.none() | st.integers(18, 100)),
            comfort_care=draw(st.booleans()),
            on_antibiotics=draw(st.booleans()),
        ),
        open_windows=draw(st.sampled_from([frozenset(), frozenset({"procedure"})])),
    )


@st.composite
def policy_histories(draw: st.DrawFn, max_steps: int = 12) -> Any:
    """A history on a simulated clock: minutes to wait, then decide an output or record a clinician's action."""
    step = st.tuples(
        st.integers(0, 300),
        st.sampled_from(["decide", "decide", "decide", "dismiss", "snooze", "acknowledge"]),
        risk_outputs(),
        policy_contexts(),
    )
    return draw(st.lists(step, max_size=max_steps))


# Whole prefetch documents for fuzzing normalisation: resource-shaped objects of the types it reads, Bundles of
# them, and plain garbage, with members holding any JSON value (including numbers at the edges of a double).
_edge_numbers = st.one_of(
    st.floats(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([1.7976931348623157e308, 5e-324])
)
_any_json = st.recursive(
    st.one_of(json_scalars, _edge_numbers),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)
_RESOURCE_MEMBERS = (
    "id", "status", "code", "subject", "valueQuantity", "component", "effectiveDateTime", "effectivePeriod",
    "birthDate", "gender", "period", "class", "clinicalStatus", "verificationStatus", "medicationCodeableConcept",
    "authoredOn", "onsetDateTime", "category", "meta", "issue", "fullUrl", "resource", "entry",
)  # fmt: skip


@st.composite
def _shaped_resources(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "OperationOutcome", "Bundle"]
        )
    )
    resource: dict[str, Any] = {"resourceType": kind}
    for member in draw(st.lists(st.sampled_from(_RESOURCE_MEMBERS), max_size=5, unique=True)):
        resource[member] = draw(_any_json)
    return resource


_prefetch_values = st.recursive(
    st.one_of(st.none(), _any_json, _shaped_resources(), observations()),
    lambda children: st.builds(
        lambda entries: {"resourceType": "Bundle", "type": "searchset", "entry": entries},
        st.lists(st.one_of(st.builds(lambda r: {"resource": r}, children), _any_json), max_size=4),
    ),
    max_leaves=8,
)
prefetch_documents = st.dictionaries(st.text(max_size=10), _prefetch_values, max_size=4)
