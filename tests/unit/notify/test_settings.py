"""Notify settings refuse timing that would duplicate sends, and name what is unsafe in production."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from notify.settings import FhirTarget, NotifySettings, WebhookTarget


def test_the_defaults_are_valid_and_give_the_configured_backoff() -> None:
    settings = NotifySettings()
    assert settings.backoff.base == timedelta(seconds=2)
    assert settings.backoff.max_attempts == settings.max_attempts
    assert settings.lease == timedelta(seconds=60)


def test_a_lease_shorter_than_a_send_is_refused() -> None:
    # Another worker would take over a send still in flight and deliver it twice.
    with pytest.raises(ValidationError, match="lease_seconds"):
        NotifySettings(lease_seconds=5, connect_timeout_seconds=5, read_timeout_seconds=10)


def test_a_backoff_cap_below_its_base_is_refused() -> None:
    with pytest.raises(ValidationError, match="backoff_cap_seconds"):
        NotifySettings(backoff_base_seconds=10, backoff_cap_seconds=1)


def test_plain_http_targets_are_named_as_production_problems() -> None:
    settings = NotifySettings(
        webhooks={
            "ops": WebhookTarget(url="http://ops.example/hook", secret="s"),  # type: ignore[arg-type]
            "safe": WebhookTarget(url="https://ops.example/hook", secret="s"),  # type: ignore[arg-type]
        },
        fhir_servers={"ehr": FhirTarget(base_url="http://ehr.example/fhir")},
    )
    assert settings.production_problems() == ["webhook 'ops' is not https", "FHIR server 'ehr' is not https"]


def test_secrets_do_not_show_in_the_settings_text() -> None:
    settings = NotifySettings(webhooks={"ops": WebhookTarget(url="https://x", secret="hunter2")})  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings)
