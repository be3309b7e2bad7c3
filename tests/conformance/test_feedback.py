"""CDS Hooks 2.0.1, section "Feedback"."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conformance.conftest import hook_request, load_example


def _a_card(client: TestClient, spec_examples: Path) -> dict[str, Any]:
    response = client.post("/cds-services/pv-test", json=hook_request(spec_examples, "patient-view"))
    card: dict[str, Any] = response.json()["cards"][0]
    return card


def _accepted(spec_examples: Path, card: dict[str, Any]) -> dict[str, Any]:
    body = load_example(spec_examples, "spec2.0.1_feedback-accepted.json")
    body["feedback"][0]["card"] = card["uuid"]
    body["feedback"][0]["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    return body


def test_ch30_accepted_feedback_with_accepted_suggestions_is_recorded(client: TestClient, spec_examples: Path) -> None:
    """§Feedback: outcome accepted with acceptedSuggestions naming the suggestion uuids."""
    body = _accepted(spec_examples, _a_card(client, spec_examples))

    response = client.post("/cds-services/pv-test/feedback", json=body)

    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 1, "duplicates": 0}


@pytest.mark.parametrize(
    "example", ["spec2.0.1_feedback-overridden-with-reason.json", "spec2.0.1_feedback-overridden-no-reason.json"]
)
def test_ch31_overridden_feedback_with_or_without_reason_is_recorded(
    client: TestClient, spec_examples: Path, example: str
) -> None:
    """§Feedback: outcome overridden, with an overrideReason (reason Coding and/or userComment) or without."""
    body = load_example(spec_examples, example)
    body["feedback"][0]["card"] = _a_card(client, spec_examples)["uuid"]

    response = client.post("/cds-services/pv-test/feedback", json=body)

    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1


def test_ch32_the_same_feedback_twice_is_stored_once(client: TestClient, spec_examples: Path) -> None:
    """§Feedback: a retried feedback message must not count twice."""
    body = _accepted(spec_examples, _a_card(client, spec_examples))

    first = client.post("/cds-services/pv-test/feedback", json=body).json()
    second = client.post("/cds-services/pv-test/feedback", json=copy.deepcopy(body)).json()

    assert first == {"recorded": 1, "duplicates": 0}
    assert second == {"recorded": 0, "duplicates": 1}


def test_ch33_feedback_in_batches_records_each_item(client: TestClient, spec_examples: Path) -> None:
    """§Feedback: the body is {"feedback": [...]}, one item per card outcome."""
    items = []
    for _ in range(3):
        item = load_example(spec_examples, "spec2.0.1_feedback-overridden-no-reason.json")["feedback"][0]
        item["card"] = _a_card(client, spec_examples)["uuid"]
        items.append(item)

    response = client.post("/cds-services/pv-test/feedback", json={"feedback": items})

    assert response.json() == {"recorded": 3, "duplicates": 0}


def test_ch34_feedback_for_an_unknown_card_is_a_clear_404(client: TestClient, spec_examples: Path) -> None:
    """§Feedback: the card uuid must be one this service returned."""
    body = load_example(spec_examples, "spec2.0.1_feedback-overridden-no-reason.json")

    response = client.post("/cds-services/pv-test/feedback", json=body)

    assert response.status_code == 404
    assert body["feedback"][0]["card"] in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"outcomeTimestamp": "2021-12-11 10:05"}, "outcomeTimestamp"),
        ({"outcomeTimestamp": "2021-12-11T10:05:31"}, "outcomeTimestamp"),
        ({"outcome": "ignored"}, "outcome"),
        ({"acceptedSuggestions": None}, "acceptedSuggestions"),
        ({"card": "c" * 37}, "card"),
    ],
)
def test_ch35_malformed_feedback_is_refused_with_400(
    client: TestClient, spec_examples: Path, change: dict[str, Any], problem: str
) -> None:
    """§Feedback: outcomeTimestamp is an RFC 3339 instant with offset; accepted needs acceptedSuggestions."""
    body = _accepted(spec_examples, _a_card(client, spec_examples))
    body["feedback"][0].update(change)
    body["feedback"][0] = {k: v for k, v in body["feedback"][0].items() if v is not None}

    response = client.post("/cds-services/pv-test/feedback", json=body)

    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]


def test_ch36_accepting_a_suggestion_the_card_never_offered_is_refused(client: TestClient, spec_examples: Path) -> None:
    """§Feedback: acceptedSuggestions refer to the suggestions of the card."""
    body = _accepted(spec_examples, _a_card(client, spec_examples))
    body["feedback"][0]["acceptedSuggestions"] = [{"id": "not-a-suggestion-of-this-card"}]

    response = client.post("/cds-services/pv-test/feedback", json=body)

    assert response.status_code == 422
