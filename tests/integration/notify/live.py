"""The live hook path on a fake clock, for the live-timer tests: NEWS2 patient-view calls through the real pipeline
(durable-rules NEWS2, the bundled deterioration policy, the SQL policy state), and workers with the live handlers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine, select

from api.catalog import ServiceCatalog, ServiceDefinition
from api.pipeline import HookPipeline
from api.security import SecuritySettings
from cdsctl.settings import Environment, Settings
from clinical.patients import pseudonymise
from notify.handlers.live import live_handlers
from notify.port import ChannelName
from notify.settings import ChannelRoute, NotifySettings, WebhookTarget
from notify.worker import Worker, build_worker
from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from scoring.port import Scorer
from scoring.rules import load_rule_scorers
from store.policy_state import SqlPolicyUnitOfWork
from store.tables import AuditRow, PolicyEventRow
from tests.integration.notify.clock import FakeClock
from tests.integration.notify.conftest import SECRET, channels_for

SALT = "live-timer-salt"
SERVICE_ID = "deterioration-news2"
# NEWS2 9 (high: escalate) and NEWS2 5 (medium: a warning card), as (LOINC, value, UCUM) per vital sign.
HIGH = (("9279-1", 26, "/min"), ("59408-5", 93, "%"), ("8480-6", 105, "mm[Hg]"), ("8867-4", 115, "/min"))
MEDIUM = (("9279-1", 22, "/min"), ("8867-4", 115, "/min"), ("8310-5", 38.5, "Cel"), ("59408-5", 97, "%"))
LOW = (("9279-1", 16, "/min"), ("8867-4", 70, "/min"), ("8310-5", 37.0, "Cel"), ("59408-5", 97, "%"))


@cache
def _news2() -> Scorer:
    return next(s for s in load_rule_scorers() if s.scorer_id == "news2")


@cache
def _service() -> ServiceDefinition:
    service = ServiceCatalog.load().get(SERVICE_ID)
    assert service is not None
    return service


def patient_key(mrn: str) -> str:
    return pseudonymise(SALT, f"Patient/{mrn}")


def hook_request(mrn: str, at: datetime, vitals: tuple[tuple[str, float, str], ...]) -> dict[str, Any]:
    observed = (at - timedelta(minutes=10)).isoformat()
    entries = [
        {
            "resource": {
                "resourceType": "Observation",
                "id": f"{mrn}-{code}-{uuid.uuid4().hex[:6]}",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/{mrn}"},
                "effectiveDateTime": observed,
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
            }
        }
        for code, value, unit in vitals
    ]
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/nurse-1", "patientId": mrn},
        "prefetch": {
            # Keyed by resource id (no identifier): the pseudonymous key is sha256(salt + "Patient/<id>").
            "patient": {"resourceType": "Patient", "id": mrn},
            "vitals": {"resourceType": "Bundle", "type": "searchset", "entry": entries},
        },
    }


class LivePath:
    """Hook calls for one database on a fake clock, as the service makes them."""

    def __init__(self, engine: Engine, clock: FakeClock) -> None:
        self.engine = engine
        self.clock = clock
        self.pipeline = HookPipeline(
            scorers={"news2": _news2()},
            policies={"deterioration": RoutedPolicy(bundled_policy("deterioration"))},
            unit_of_work=lambda: SqlPolicyUnitOfWork(engine),
            salt=SALT,
            clock=clock,
        )

    def call(self, mrn: str, vitals: tuple[tuple[str, float, str], ...] = HIGH) -> dict[str, Any]:
        return self.pipeline.handle(_service(), hook_request(mrn, self.clock(), vitals))


def service_settings(database_url: str, data_dir: Path, notify: NotifySettings) -> Settings:
    """The wired service's settings for these tests: no token checks, a deadline no test run reaches, this module's
    pseudonym salt (so patient_key names the patients of hook_request) and the given notify settings."""
    return Settings(
        environment=Environment.TEST,
        data_dir=data_dir,
        database_url=database_url,
        pseudonym_salt=SALT,
        hook_deadline_seconds=10,
        security=SecuritySettings(enabled=False),
        notify=notify,
    )


def settings_for(webhook_url: str, **changes: object) -> NotifySettings:
    """Fast settings with one webhook target `ops`, which the ladder's `pager` and the `delay-due` route use."""
    values: dict[str, object] = {
        "webhooks": {"ops": WebhookTarget(url=webhook_url, secret=SecretStr(SECRET))},
        "routes": {
            "pager": ChannelRoute(channel=ChannelName.WEBHOOK, target="ops"),
            "delay-due": ChannelRoute(channel=ChannelName.WEBHOOK, target="ops"),
        },
        "backoff_base_seconds": 0.005,
        "backoff_cap_seconds": 0.04,
        "poll_interval_seconds": 0.01,
        "lease_seconds": 5.0,
        "connect_timeout_seconds": 0.5,
        "read_timeout_seconds": 1.0,
    }
    values.update(changes)
    return NotifySettings.model_validate(values)


def live_worker(
    engine: Engine, settings: NotifySettings, clock: FakeClock, client: httpx.Client, worker_id: str = "worker-a"
) -> Worker:
    return build_worker(
        engine,
        settings,
        live_handlers(settings, clock=clock),
        channels=channels_for(settings, clock, client),
        worker_id=worker_id,
        clock=clock,
    )


def drain(worker: Worker) -> None:
    """Run passes until one finds nothing due (a fired timer's message is delivered by the same or next pass)."""
    while worker.run_once() > 0:
        pass


def events_of(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(PolicyEventRow.payload).where(PolicyEventRow.kind == kind).order_by(PolicyEventRow.id)
            )
        )


def timer_audits(engine: Engine) -> list[tuple[str, str, str]]:
    """(kind, outcome, timer key) of every live-timer audit record, in order."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditRow.kind, AuditRow.payload)
            .where(AuditRow.kind.in_(("escalation-step", "delay-due")))
            .order_by(AuditRow.seq)
        ).all()
    return [(row.kind, row.payload["outcome"], row.payload["timer"]) for row in rows]
