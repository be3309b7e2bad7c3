"""The one place where real adapters are wired together: settings → store, scorers, policies → pipeline → app."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.admin.policies import APP_STATE_KEY as POLICY_ADMIN_KEY
from api.admin.service import PolicyAdmin, SilenceAdmin
from api.admin.silences import APP_STATE_KEY as SILENCE_ADMIN_KEY
from api.app import create_app
from api.catalog import BUNDLED_SERVICES, ServiceCatalog
from api.pipeline import HookPipeline
from api.security import EhrAuthenticator
from cdsctl.heap import settle_heap
from cdsctl.logs import configure_logging
from cdsctl.settings import Settings, get_settings
from clinical.units import warm_up as warm_up_units
from notify.handlers.live import live_handlers
from notify.port import Clock, system_clock
from notify.worker import build_worker, start_in_background
from policy.document import bundled_policy
from policy.engine import RoutedPolicy
from policy.live import LivePolicies
from policy.passthrough import PassThroughPolicy
from policy.port import Policy
from scoring.model.scorer import latest_model_scorers
from scoring.port import Scorer
from scoring.rules import load_rule_scorers
from shadow.arms import ArmFactory
from shadow.live import LiveShadow
from shadow.rollout import CandidateRollout, ServiceFacts
from store.candidates import SqlCandidateStore
from store.checkpoints import WalCheckpointer
from store.db import is_file_sqlite, make_engine, make_session_factory
from store.migrate import is_current
from store.policy_state import SqlPolicyUnitOfWork
from store.policy_versions import active_version_loader
from store.queue_figures import QueueFigures, queue_figures
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
    clock: Clock = system_clock
    # Live candidates: the informaticist's rollout service (api/candidates.py) and the pipeline's shadow runner.
    candidates: CandidateRollout | None = None
    shadow: LiveShadow | None = None
    # What the hook path decides with: the active stored version of a policy, else the bundled one.
    live_policies: LivePolicies | None = None

    def unit_of_work(self) -> SqlPolicyUnitOfWork:
        return SqlPolicyUnitOfWork(self.sessions)

    def start_worker(self) -> Callable[[], None]:
        """Start the notify worker (live-path timers, the outbox) on a background thread; returns its stop."""
        notify = self.settings.notify
        worker = build_worker(self.sessions, notify, live_handlers(notify, clock=self.clock), clock=self.clock)
        background = start_in_background(worker)
        grace = self.settings.shutdown_grace_seconds

        def stop() -> None:
            background.stop(timeout=grace)

        return stop

    def start_background(self) -> Callable[[], None]:
        """What runs beside the app for its lifetime: the notify worker when it runs in-process, and a SQLite file's
        log checkpoints (store.checkpoints); the stop also lets queued shadow work finish (it is recorded after the
        live answer, so a shutdown must not drop it)."""
        stop_worker = self.start_worker() if self.settings.worker_in_process else None
        checkpoints = WalCheckpointer(self.engine).start() if is_file_sqlite(self.engine.url) else None
        grace = self.settings.shutdown_grace_seconds

        def stop() -> None:
            if self.shadow is not None:
                self.shadow.drain(timeout=grace)
            if stop_worker is not None:
                stop_worker()
            if checkpoints is not None:
                checkpoints()

        return stop

    def queue_figures(self) -> QueueFigures:
        """The durable queues for /metrics: outbox depth by state, pending timers, the oldest overdue timer."""
        return queue_figures(self.engine, self.clock())

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
    clock: Clock | None = None,
) -> Container:
    """Wire the real adapters. `catalog` and the extras let tests and deployments add services and components."""
    # On a SQLite file, the log is copied into the database beside the hook path (start_background).
    engine = make_engine(settings.resolved_database_url, background_checkpoints=True)
    if not is_current(engine):
        raise SchemaNotCurrentError("the database schema is not current: run `cdsctl db upgrade` first")
    sessions = make_session_factory(engine)
    # The live scorer of each model is its latest version; shadow mode loads others beside it.
    models = latest_model_scorers()
    scorers: dict[str, Scorer] = {s.scorer_id: s for s in (*load_rule_scorers(), *models, *extra_scorers)}
    policies: dict[str, Policy] = {p.policy_id: p for p in (*load_bundled_policies(), *extra_policies)}
    candidate_store, arms = SqlCandidateStore(engine), ArmFactory(policies)
    shadow = LiveShadow(candidate_store, candidate_store, arms)
    live_policies = LivePolicies(
        policies,
        active_version_loader(sessions),
        refresh_seconds=settings.policy_refresh_seconds,
    )
    pipeline = HookPipeline(
        shadow=shadow,
        scorers=scorers,
        policies=live_policies,
        # The policy-aware unit of work: routed policies read and append their state in the hook call's transaction.
        unit_of_work=lambda: SqlPolicyUnitOfWork(sessions),
        salt=settings.pseudonym_salt,
        validation=settings.fhir_validation.value,
        clock=clock or system_clock,
    )
    # Start-up work that would otherwise land on the first hook calls (seconds of UCUM registry building).
    warm_up_units()
    catalog = catalog or ServiceCatalog.load(settings.services_file or BUNDLED_SERVICES)
    for service in catalog:
        pipeline.check(service)
    facts = {s.id: ServiceFacts(s.scorers, s.policy) for s in catalog}
    return Container(
        settings, engine, sessions, catalog, scorers, policies, pipeline, clock=clock or system_clock,
        candidates=CandidateRollout(candidate_store, arms, facts, clock=clock or system_clock), shadow=shadow,
        live_policies=live_policies,
    )  # fmt: skip


def create_app_from_container(container: Container) -> FastAPI:
    authenticator = EhrAuthenticator.from_settings(
        container.settings.resolved_security, replay_guard=SqlReplayGuard(container.engine)
    )
    app = create_app(
        settings=container.settings,
        catalog=container.catalog,
        pipeline=container.pipeline,
        authenticator=authenticator,
        readiness=container.readiness,
        background=container.start_background,
    )
    app.state.candidates = container.candidates
    app.state.queue_figures = container.queue_figures
    if container.live_policies is not None:
        setattr(app.state, POLICY_ADMIN_KEY, PolicyAdmin(container.sessions, container.live_policies))
    setattr(app.state, SILENCE_ADMIN_KEY, SilenceAdmin(container.sessions))
    return app


def create_app_from_settings(settings: Settings) -> FastAPI:
    return create_app_from_container(build_container(settings))


def create_app_from_environment() -> FastAPI:
    """The uvicorn factory `cdsctl serve` runs in each worker process."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    app = create_app_from_settings(settings)
    settle_heap()
    return app
