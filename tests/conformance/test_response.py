"""CDS Hooks 2.0.1, section "CDS Service Response" (Card, Source, Suggestion, Action, Link attributes)."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from api.schemas import CardsResponse
from tests.conformance.conftest import hook_request, load_example


def _cards(client: TestClient, spec_examples: Path, service: str = "pv-test") -> list[dict[str, object]]:
    response = client.post(f"/cds-services/{service}", json=hook_request(spec_examples, "patient-view"))
    assert response.status_code == 200, response.text
    CardsResponse.model_validate(response.json())
    cards: list[dict[str, object]] = response.json()["cards"]
    return cards


def test_ch20_every_response_passes_the_strict_response_schema(client: TestClient, spec_examples: Path) -> None:
    """§CDS Service Response: summary < 140 characters, indicator in info/warning/critical, source.label required."""
    cards = _cards(client, spec_examples)

    assert cards
    for card in cards:
        assert len(str(card["summary"])) < 140
        assert card["indicator"] in ("info", "warning", "critical")


def test_ch21_cards_and_suggestions_carry_unique_uuids(client: TestClient, spec_examples: Path) -> None:
    """§Card Attributes: uuid identifies a card (and each suggestion) so that feedback can refer to it."""
    first = _cards(client, spec_examples)
    second = _cards(client, spec_examples)

    ids = [c["uuid"] for c in first + second] + [
        s["uuid"]
        for c in first + second
        for s in c["suggestions"]  # type: ignore[attr-defined]
    ]
    assert len(ids) == len(set(ids))
    for value in ids:
        uuid.UUID(str(value))


def test_ch22_suggestions_come_with_selection_behavior_and_typed_actions(
    client: TestClient, spec_examples: Path
) -> None:
    """§Suggestion / §Action: selectionBehavior whenever there are suggestions; actions typed create/update/delete."""
    card = _cards(client, spec_examples)[0]

    assert card["selectionBehavior"] in ("at-most-one", "any")
    suggestion = card["suggestions"][0]  # type: ignore[index]
    assert suggestion["isRecommended"] is True
    action = suggestion["actions"][0]
    assert action["type"] == "create"
    assert action["resource"]["resourceType"] == "ServiceRequest"


def test_ch23_override_reasons_are_codings_and_links_are_absolute_urls(client: TestClient, spec_examples: Path) -> None:
    """§Card Attributes: overrideReasons are Codings (code, system, display); links have label, url, type."""
    card = _cards(client, spec_examples)[0]

    assert card["overrideReasons"] == [
        {"code": "already-addressed", "system": "urn:test:override", "display": "Already addressed"}
    ]
    assert card["links"] == [{"label": "Reference", "url": "https://example.org/reference", "type": "absolute"}]


def test_ch24_source_names_the_service_and_the_scorer_topic(client: TestClient, spec_examples: Path) -> None:
    """§Source: label required; topic is a Coding naming what the card is about."""
    card = _cards(client, spec_examples)[0]

    assert card["source"]["label"]  # type: ignore[index]
    assert card["source"]["topic"]["code"] == "fake-high"  # type: ignore[index]


def test_ch25_no_guidance_is_an_empty_cards_array(client: TestClient, spec_examples: Path) -> None:
    """§CDS Service Response: a service with nothing to say answers {"cards": []}."""
    response = client.post("/cds-services/quiet-test", json=hook_request(spec_examples, "patient-view"))

    assert response.status_code == 200
    assert response.json() == load_example(spec_examples, "spec2.0.1_response-empty-cards.json")


def test_ch26_the_specifications_response_examples_pass_our_response_schema(spec_examples: Path) -> None:
    """§CDS Service Response: the schema we hold ourselves to accepts the spec's examples (systemActions fixed)."""
    cards = load_example(spec_examples, "spec2.0.1_response-cards-links-overrideReasons.json")
    actions = load_example(spec_examples, "spec2.0.1_response-systemActions-NOTE-missing-description.json")
    # The published example omits the description the specification requires of every action.
    actions["systemActions"][0]["description"] = "Update the MRI order"

    assert len(CardsResponse.model_validate(cards).cards) == 2
    assert CardsResponse.model_validate(actions).system_actions
