"""Notify configuration: outbound targets and their secrets, retry timing and the worker's pace. The lead's one
`Settings` class carries it as a field (`notify: NotifySettings`), so it is read once with everything else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from notify.backoff import Backoff
from notify.port import ChannelName


class WebhookTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    # The HMAC key the receiver shares; one per target so a leaked key exposes one receiver only.
    secret: SecretStr


class FhirTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    base_url: str
    bearer_token: SecretStr | None = None
    # The identifier system of the Communication's idempotency identifier (used in If-None-Exist).
    identifier_system: str = "urn:cds-control-plane:outbox"


class ChannelRoute(BaseModel):
    """Where a policy's channel name (an escalation step's `pager`, `ehr-inbox`, or `delay-due`) is delivered."""

    model_config = ConfigDict(frozen=True)

    channel: ChannelName
    # The name of a configured webhook or FHIR server.
    target: str


class NotifySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    webhooks: dict[str, WebhookTarget] = Field(default_factory=dict)
    fhir_servers: dict[str, FhirTarget] = Field(default_factory=dict)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_cap_seconds: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=10, ge=1, le=100)
    poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    # A claim older than this is presumed abandoned (its worker died) and another worker takes the row over.
    # It must outlast the slowest send (the HTTP timeouts below), or a live send is duplicated.
    lease_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=20, ge=1, le=1000)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=10.0, gt=0)
    # Timer handlers that keep raising are retried this often, then the timer is marked failed.
    timer_max_attempts: int = Field(default=5, ge=1, le=100)
    # Whether `cdsctl serve` runs the worker in-process; unset means on for the embedded SQLite database and off
    # otherwise (a PostgreSQL deployment runs `cdsctl worker` beside the service).
    run_in_process: bool | None = None
    # Policy channel names (escalation steps' `channel`, and `delay-due`) to the outbox channel and target used.
    routes: dict[str, ChannelRoute] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_timing(self) -> NotifySettings:
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_cap_seconds must be at least backoff_base_seconds")
        if self.lease_seconds <= self.connect_timeout_seconds + self.read_timeout_seconds:
            raise ValueError("lease_seconds must exceed a send's timeouts, or live sends are taken over and repeated")
        return self

    @model_validator(mode="after")
    def _check_routes(self) -> NotifySettings:
        for name, route in self.routes.items():
            known: dict[str, Any] = dict(self.webhooks if route.channel is ChannelName.WEBHOOK else self.fhir_servers)
            if route.target not in known:
                raise ValueError(f"route {name!r}: {route.channel} target {route.target!r} is not configured")
        return self

    @property
    def backoff(self) -> Backoff:
        return Backoff(
            base=timedelta(seconds=self.backoff_base_seconds),
            cap=timedelta(seconds=self.backoff_cap_seconds),
            max_attempts=self.max_attempts,
        )

    @property
    def timer_backoff(self) -> Backoff:
        return Backoff(
            base=timedelta(seconds=self.backoff_base_seconds),
            cap=timedelta(seconds=self.backoff_cap_seconds),
            max_attempts=self.timer_max_attempts,
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def production_problems(self) -> list[str]:
        """Values unsafe in production (the main Settings refuses to start with any): plain-http targets."""
        problems = [f"webhook {name!r} is not https" for name, t in self.webhooks.items() if not _https(t.url)]
        problems += [
            f"FHIR server {name!r} is not https" for name, t in self.fhir_servers.items() if not _https(t.base_url)
        ]
        return problems


def _https(url: str) -> bool:
    return url.lower().startswith("https://")
