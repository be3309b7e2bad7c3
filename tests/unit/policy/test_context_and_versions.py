"""Policy context derived from the clinical context, and policy versions: stored immutably, activated explicitly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clinical.model import (
    CareFlags,
    ClinicalContext,
    Encounter,
    MedicationOrder,
    Observation,
    Patient,
    Provenance,
    Sex,
    UnitType,
)
from policy.context import PolicyContext
from policy.document import BUNDLED_DIR, PolicyValidationError
from policy.versions import PolicyVersions, VersionRefusedError, new_version

NOW = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
SOURCE = Provenance("Observation")


def _clinical(*, antibiotic: bool) -> ClinicalContext:
    return ClinicalContext(
        patient=Patient("pk", None, Sex.FEMALE, (), Provenance("Patient"), age_years=71.5),
        encounter=Encounter("e1", "IMP", "in-progress", "4N", UnitType.WARD, None, None, Provenance("Encounter")),
        observations=(
            Observation("lactate", None, 2.1, "mmol/L", NOW.replace(hour=8), None, "final", SOURCE),
            Observation("lactate", None, 3.4, "mmol/L", NOW.replace(hour=9), None, "final", SOURCE),
            Observation("lactate", None, None, "mmol/L", NOW, None, "final", SOURCE),
        ),
        medications=(
            MedicationOrder(
                "request", "active", ("x",), "ceftriaxone", antibiotic, NOW, Provenance("MedicationRequest")
            ),
        ),
        flags=CareFlags(comfort_care=True, code_status="DNR"),
    )


def test_the_policy_context_takes_the_facts_policies_route_on_from_the_clinical_context() -> None:
    context = PolicyContext.from_clinical(_clinical(antibiotic=True), hook="patient-view", role="nurse")

    assert context.unit.unit_type == "ward" and context.unit.unit_id == "4N"
    assert context.patient.key == "pk" and context.patient.encounter_id == "e1"
    assert context.patient.age_years == 71.5
    assert context.patient.comfort_care is True and context.patient.code_status == "DNR"
    assert context.patient.on_antibiotics is True
    # The latest usable lactate; the one without a value does not count as a confirming observation.
    assert context.patient.observed["lactate"] == NOW.replace(hour=9)
    assert context.patient.observed.get("heart_rate") is None
    assert dict(context.patient.observed) == {"lactate": NOW.replace(hour=9)}
    assert repr(context.patient.observed) == repr({"lactate": NOW.replace(hour=9)})


def test_a_medication_that_is_not_an_antibiotic_is_not_antibiotic_therapy() -> None:
    assert PolicyContext.from_clinical(_clinical(antibiotic=False)).patient.on_antibiotics is False


TEXT = (BUNDLED_DIR / "surface-all.yaml").read_text()


def test_a_version_records_author_comment_time_and_content_hash() -> None:
    version = new_version(TEXT, author="informaticist", comment="baseline", now=NOW)

    assert (version.policy_id, version.version, version.author, version.created_at) == (
        "surface-all", "1.0.0", "informaticist", NOW,
    )  # fmt: skip
    assert version.content_hash == version.document().content_hash()


def test_a_version_without_an_author_or_a_comment_is_refused() -> None:
    with pytest.raises(VersionRefusedError):
        new_version(TEXT, author=" ", comment="why", now=NOW)
    with pytest.raises(VersionRefusedError):
        new_version(TEXT, author="me", comment="", now=NOW)


def test_a_version_that_does_not_validate_is_refused_with_its_errors() -> None:
    with pytest.raises(PolicyValidationError) as refused:
        new_version(TEXT.replace("action: surface", "action: shout"), author="me", comment="c", now=NOW)

    assert refused.value.errors[0].startswith("defaults.action:")


def test_a_stored_version_is_never_edited_in_place() -> None:
    versions = PolicyVersions()
    versions.add(new_version(TEXT, author="a", comment="first", now=NOW))

    changed = TEXT.replace("budget: false", "budget: true")
    with pytest.raises(VersionRefusedError, match="never edited in place"):
        versions.add(new_version(changed, author="a", comment="sneaky", now=NOW))
    versions.add(new_version(changed.replace('"1.0.0"', '"1.0.1"'), author="a", comment="second", now=NOW))

    assert [v.version for v in versions.history("surface-all")] == ["1.0.0", "1.0.1"]


def test_nothing_is_active_until_a_version_is_activated() -> None:
    versions = PolicyVersions()
    stored = versions.add(new_version(TEXT, author="a", comment="first", now=NOW))

    assert versions.active("surface-all") is None
    activated = versions.activate("surface-all", stored.content_hash, actor="lead", now=NOW)
    assert versions.active("surface-all") == stored
    assert activated.actor == "lead"
    with pytest.raises(VersionRefusedError):
        versions.activate("surface-all", "0" * 64, actor="lead", now=NOW)
