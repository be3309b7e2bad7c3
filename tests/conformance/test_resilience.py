"""The service's own promises to the EHR beyond the specification: idempotent hookInstance, a deadline, no 500."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conformance.conftest import DEADLINE_S, hook_request


def test_ch50_a_repeated_hook_instance_gets_the_same_cards(client: TestClient, spec_examples: Path) -> None:
    """§hookInstance: a retry with the same hookInstance is answered with the cards of the first call."""
    body = hook_request(spec_examples, "patient-view")

    first = client.post("/cds-services/pv-test", json=body).json()
    second = client.post("/cds-services/pv-test", json=body).json()

    assert first["cards"] and first == second


def test_ch51_a_slow_scorer_gets_an_empty_answer_within_the_deadline(client: TestClient, spec_examples: Path) -> None:
    """The EHR never waits past the deadline: a scorer four times slower than it yields {"cards": []} in time."""
    started = time.monotonic()
    response = client.post("/cds-services/slow-test", json=hook_request(spec_examples, "patient-view"))
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json() == {"cards": []}
    assert elapsed < DEADLINE_S * 3  # generous: the point is that it did not wait for the scorer's full delay


def test_ch52_a_failing_scorer_gives_no_cards_and_never_a_500(client: TestClient, spec_examples: Path) -> None:
    """A scorer that raises must not become an error for the EHR."""
    response = client.post("/cds-services/broken-test", json=hook_request(spec_examples, "patient-view"))

    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_ch53_bodies_over_the_size_limit_are_refused_with_413(client: TestClient) -> None:
    limit = client.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    response = client.post(
        "/cds-services/pv-test", content=b"{" + b" " * limit + b"}", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
