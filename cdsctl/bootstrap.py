"""The one place where real adapters are wired together: settings → store, scorers, policies → pipeline → app."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.catalog import ServiceCatalog
from api.pipeline import HookPipeline
from api.security import EhrAuthenticator
from cdsctl.logs import configure_logging
from cdsctl.settings import Settings, get_settings
from clinical.units import warm_up as warm_up_units
from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from policy.passthrough import PassThroughPolicy
from policy.port import Policy
from scoring.model.scorer import latest_model_scorers
from scoring.port import Scorer
from scoring.rules import load_rule_scorers
from store.db import make_engine, make_session_factory
from store.migrate import is_current
from store.policy_state import SqlPolicyUnitOfWork
from store.replay import SqlReplayGuard


class SchemaNotCurrentError(RuntimeError):
    pass


# The policy documents shipped in policy/bundled, loaded as routed policies under their ids.
BUNDLED_POLICIES = ("deterioration", "surface-all")


def load_bundled_policies() -> list[Policy]:
    """The bundled routed policies, and pass-through (kept for tests and as shadow mode's baseline)."""
    return [PassThroughPolicy(), *(RoutedPolicy(bundled_policy(name)) for name in BUNDLED_POLICIES)]


@dataclass(frozen=True)
class Container:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    catalog: ServiceCatalog
    scorers: dict[str, Scorer]
    policies: dict[str, Policy]
    pipeline: HookPipeline

    def unit_of_work(self) -> SqlPolicyUnitOfWork:
        return SqlPolicyUnitOfWork(self.sessions)

    def readiness(self) -> dict[str, bool]:
        """What /readyz reports: each check is True when it passed."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            database = True
            schema = is_current(self.engine)
        except SQLAlchemyError:
            database = schema = False
        return {"database": database, "schema_current": schema, "scorers_loaded": bool(self.scorers)}


def build_container(
    settings: Settings,
    *,
    catalog: ServiceCatalog | None = None,
    extra_scorers: Iterable[Scorer] = (),
    extra_policies: Iterable[Policy] = (),
) -> Container:
    """Wire the real adapters. `catalog` and the extras let tests and deployments add services and components."""
    engine = make_engine(settings.resolved_database_url)
    if not is_current(engine):
        raise SchemaNotCurrentError("the database schema is not current: run `cdsctl db upgrade` first")
    sessions = make_session_factory(engine)
    # The live scorer of each model is its latest version; shadow mode loads others beside it.
    models = latest_model_scorers()
    scorers: dict[str, Scorer] = {s.scorer_id: s for s in (*load_rule_scorers(), *models, *extra_scorers)}
    policies: dict[str, Policy] = {p.policy_id: p for p in (*load_bundled_policies(), *extra_policies)}
    pipeline = HookPipeline(
        scorers=scorers,
        policies=policies,
        # The policy-aware unit of work: routed policies read and append their state in the hook call's transaction.
        unit_of_work=lambda: SqlPolicyUnitOfWork(sessions),
        salt=settings.pseudonym_salt,
        validation=settings.fhir_validation.value,
    )
    # Start-up work that would otherwise land on the first hook calls (seconds of UCUM registry building).
    warm_up_units()
    catalog = catalog or ServiceCatalog.load()
    for service in catalog:
        pipeline.check(service)
    return Container(settings, engine, sessions, catalog, scorers, policies, pipeline)


def create_app_from_container(container: Container) -> FastAPI:
    authenticator = EhrAuthenticator.from_settings(
        container.settings.resolved_security, replay_guard=SqlReplayGuard(container.engine)
    )
    return create_app(
        settings=container.settings,
        catalog=container.catalog,
        pipeline=container.pipeline,
        authenticator=authenticator,
        readiness=container.readiness,
    )


def create_app_from_settings(settings: Settings) -> FastAPI:
    return create_app_from_container(build_container(settings))


def create_app_from_environment() -> FastAPI:
    """The uvicorn factory `cdsctl serve` runs in each worker process."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app_from_settings(settings)
