"""The one settings class, read once from the environment (prefix CDS_), refusing unsafe values in production."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.security.settings import SecuritySettings, refuse_unsafe_in_production
from api.security.staff_settings import StaffAuthSettings
from notify.settings import NotifySettings


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class FhirValidation(StrEnum):
    """How hook prefetch is checked: `fast` reads only the elements normalisation uses, with type checks;
    `strict` validates every resource with fhir.resources first. Both give the same canonical objects."""

    FAST = "fast"
    STRICT = "strict"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", env_file=None, extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    # Empty means the embedded default: a SQLite file under data_dir.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    fhir_validation: FhirValidation = FhirValidation.FAST
    # The CDS services this instance offers (id, hook, scorers, policy, prefetch, cards); empty means the bundled
    # catalogue (api/services/default.yaml), which is also the example to start a hospital's own from.
    services_file: Path | None = None
    # Salt for pseudonymising identifiers in logs and metrics; must be set to a secret in production.
    pseudonym_salt: str = "development-only-salt"
    hook_deadline_seconds: float = Field(default=1.0, gt=0, le=30)
    # Threads per worker process that run hook calls; unset, chosen by the database (see resolved_hook_threads).
    hook_threads: int | None = Field(default=None, ge=1, le=64)
    # At most this many queued hook calls are recorded in one transaction (api.hook_runner); 1: each alone.
    hook_batch_max: int = Field(default=16, ge=1, le=256)
    # Hook requests larger than this are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Prefetch completion from the EHR's FHIR server. Plain http is for development and tests only.
    fhir_allow_http: bool = False
    prefetch_timeout_seconds: float = Field(default=0.6, gt=0, le=30)
    prefetch_max_pages: int = Field(default=5, ge=1, le=100)
    prefetch_max_entries: int = Field(default=1000, ge=1)
    # When set, only these origins (scheme://host[:port]) are fetched from, whatever fhirServer a request names.
    fhir_server_origins: list[str] | None = None
    # EHR authentication (signed JWTs). Left unset, it is on everywhere but in development.
    security: SecuritySettings | None = None
    # Staff (clinician, informaticist, operator) tokens for the admin API; on whenever EHR authentication is.
    staff_auth: StaffAuthSettings = Field(default_factory=StaffAuthSettings)
    # How often each worker process looks for a newly activated policy version (the activating process at once).
    policy_refresh_seconds: float = Field(default=2.0, ge=0, le=300)
    # Durable timers and the outbox of outbound messages (webhooks, FHIR Communications).
    notify: NotifySettings = Field(default_factory=NotifySettings)
    # On shutdown, how long hook work that is still recording may take before the process exits anyway.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=120)

    @property
    def resolved_security(self) -> SecuritySettings:
        if self.security is not None:
            return self.security
        return SecuritySettings(enabled=self.environment is not Environment.DEVELOPMENT)

    @property
    def worker_in_process(self) -> bool:
        """Whether `cdsctl serve` runs the notify worker on a background thread: CDS_NOTIFY's `run_in_process`, or
        when unset, only for the embedded SQLite database (a PostgreSQL deployment runs `cdsctl worker`)."""
        if self.notify.run_in_process is not None:
            return self.notify.run_in_process
        return self.embedded_database

    @property
    def resolved_hook_threads(self) -> int:
        """Hook calls' threads in each worker process: one unless configured. The calls' Python work holds the
        interpreter lock, so threads only pay where a call waits, and a free thread takes every call queued and records
        them in one transaction (api.hook_runner): fewer threads mean bigger batches and fewer commits. On SQLite a call
        never waits on a network and its transaction holds the only writer lock throughout, so a second thread only
        interleaves two calls: each then ran about 25 % slower (CPU a call), the others' commits emptying its
        connection's page cache (3.5x the bytes read). On PostgreSQL, since a call's rows go in with its batch's (about
        6 statements a call instead of 12), one thread beat two in alternating runs against a local server
        (2026-12-06): 13-25 % less CPU a call and a lower p99 in each of 8 pairs; a batch's patients are now also
        locked and read together (store.policy_state.prepare_patients) and their own rows written together: about 14
        round trips for 8 calls instead of 36 (2026-12-06). More threads suit a database with
        long round trips; with one, a call stuck on the database holds the calls queued behind it (they are answered
        at the deadline, and recorded once it moves)."""
        return self.hook_threads if self.hook_threads is not None else 1

    @property
    def embedded_database(self) -> bool:
        """Whether the store is a SQLite file in this process rather than a database server."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cds.sqlite3').as_posix()}"

    @field_validator("services_file", mode="before")
    @classmethod
    def _empty_means_bundled(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_unsafe_production_values(self) -> Settings:
        if self.environment is not Environment.PRODUCTION:
            return self
        if self.pseudonym_salt == "development-only-salt":
            raise ValueError("CDS_PSEUDONYM_SALT must be set to a secret value in production")
        if self.fhir_allow_http:
            raise ValueError("CDS_FHIR_ALLOW_HTTP is for development and tests; production fetches over https only")
        refuse_unsafe_in_production(self.resolved_security)
        problems = self.notify.production_problems() + self.staff_auth.production_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
