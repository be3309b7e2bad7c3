"""Several `cdsctl serve` processes against one PostgreSQL database, as deployed: `serve --workers 2` on one port and
a second `serve` on another, racing over the same hookInstance and over many patients' calls at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from threading import Barrier
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from store.tables import AuditRow, CardRow, DecisionRow, HookCallRow, RiskOutputRow
from tests.e2e.conftest import _free_port, _wait_until_healthy
from tests.e2e.test_walking_skeleton import patient_view_request

# Only PostgreSQL: the multi-process deployment is a server database's job; SQLite is one embedded writer.
pytestmark = pytest.mark.parametrize(
    "module_database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)

SERVICE = "/cds-services/deterioration-news2"


@dataclass
class Deployment:
    """`--workers 2` behind `base_urls[0]`, one more `cdsctl serve` process behind `base_urls[1]`."""

    base_urls: tuple[str, str]
    database_url: str
    env: dict[str, str]
    supervisor_pid: int


def _worker_processes(pid: int) -> list[int]:
    """The uvicorn workers under a supervisor (its other child, the resource tracker, serves nothing)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children.extend(int(child) for child in (task / "children").read_text().split())
    return [child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


@pytest.fixture(scope="module")
def deployment(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp_path = tmp_path_factory.mktemp("multi")
    env = {
        **os.environ,
        "CDS_ENVIRONMENT": "test",
        "CDS_DATA_DIR": str(tmp_path / "var"),
        "CDS_DATABASE_URL": module_database_url,
        "CDS_LOG_LEVEL": "WARNING",
        "CDS_PSEUDONYM_SALT": "e2e-multi-salt",
        # Generous: these tests check what is recorded; the deadline has its own tests.
        "CDS_HOOK_DEADLINE_SECONDS": "20",
        "CDS_SECURITY": '{"enabled": false}',
    }
    cli = [sys.executable, "-m", "cdsctl"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for n, workers in enumerate((2, 1)):
            port = _free_port()
            log_path = tmp_path / f"server-{n}.log"
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            _wait_until_healthy(urls[-1], process, log_path)
        yield Deployment((urls[0], urls[1]), module_database_url, env, processes[0].pid)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _request_for(mrn: str) -> dict[str, Any]:
    request = patient_view_request(datetime.now(UTC))
    request["prefetch"]["patient"]["identifier"][0]["value"] = mrn
    return request


def _post_all(posts: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """Every post released at once from its own thread, so the processes really race."""
    start = Barrier(len(posts))

    def post(url: str, body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            start.wait()
            return client.post(url + SERVICE, json=body)

    with ThreadPoolExecutor(max_workers=len(posts)) as pool:
        return list(pool.map(lambda p: post(*p), posts))


def _count(database_url: str, query: Any) -> int:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(query) or 0)
    finally:
        engine.dispose()


def test_serve_with_two_workers_runs_two_worker_processes_behind_one_port(deployment: Deployment) -> None:
    assert len(_worker_processes(deployment.supervisor_pid)) == 2


def test_the_same_hook_instance_posted_to_both_processes_at_once_is_recorded_once_with_the_same_cards(
    deployment: Deployment,
) -> None:
    request = _request_for(f"MRN-{uuid.uuid4().hex[:8]}")
    instance = request["hookInstance"]
    # Three connections to the two-worker port (the kernel spreads them over its workers) and three to the other.
    posts = [(url, request) for url in deployment.base_urls for _ in range(3)]

    responses = _post_all(posts)

    assert [r.status_code for r in responses] == [200] * len(posts)
    bodies = [r.json() for r in responses]
    assert len(bodies[0]["cards"]) == 1, "the NEWS2 9 call must surface its card, or equality below means little"
    assert all(body == bodies[0] for body in bodies)
    url = deployment.database_url
    assert _count(url, select(func.count()).select_from(HookCallRow).where(HookCallRow.hook_instance == instance)) == 1
    assert _count(url, select(func.count()).select_from(AuditRow).where(AuditRow.subject == f"hook:{instance}")) == 1
    assert _count(url, select(func.count()).select_from(CardRow).where(CardRow.hook_instance == instance)) == 1
    decisions = (
        select(func.count())
        .select_from(DecisionRow)
        .join(RiskOutputRow, DecisionRow.risk_output_id == RiskOutputRow.id)
        .where(RiskOutputRow.hook_instance == instance)
    )
    assert _count(url, decisions) == 1


def test_different_patients_calls_spread_over_both_processes_are_all_recorded(deployment: Deployment) -> None:
    requests = [_request_for(f"MRN-{uuid.uuid4().hex[:8]}") for _ in range(12)]
    posts = [(deployment.base_urls[n % 2], request) for n, request in enumerate(requests)]

    responses = _post_all(posts)

    # Every patient is new, so each gets its own critical card: none was answered from another's record.
    assert [len(r.json()["cards"]) for r in responses] == [1] * len(requests)
    instances = [r["hookInstance"] for r in requests]
    url = deployment.database_url
    calls = select(func.count()).select_from(HookCallRow).where(HookCallRow.hook_instance.in_(instances))
    audits = select(func.count()).select_from(AuditRow).where(AuditRow.subject.in_([f"hook:{i}" for i in instances]))
    assert _count(url, calls) == len(requests)
    assert _count(url, audits) == len(requests)


def test_the_audit_chain_verifies_after_both_processes_wrote_to_it(deployment: Deployment) -> None:
    requests = [_request_for(f"MRN-{uuid.uuid4().hex[:8]}") for _ in range(6)]
    _post_all([(deployment.base_urls[n % 2], request) for n, request in enumerate(requests)])

    verify = subprocess.run(
        [sys.executable, "-m", "cdsctl", "audit", "verify"],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert verify.returncode == 0, verify.stderr
    checked = int(verify.stdout.split()[1])
    assert checked >= len(requests)


def test_a_killed_worker_is_replaced_while_the_other_keeps_answering(deployment: Deployment) -> None:
    # Last in this module: it leaves the deployment with a fresh worker in place of the killed one.
    before = _worker_processes(deployment.supervisor_pid)
    os.kill(before[0], signal.SIGKILL)
    requests = [_request_for(f"MRN-{uuid.uuid4().hex[:8]}") for _ in range(4)]

    responses = _post_all([(deployment.base_urls[0], request) for request in requests])

    assert [len(r.json()["cards"]) for r in responses] == [1] * len(requests)
    replaced = _wait_for(lambda: len(_worker_processes(deployment.supervisor_pid)) == 2, timeout_s=120)
    assert replaced, "the supervisor did not start a worker in place of the killed one"
    assert before[0] not in _worker_processes(deployment.supervisor_pid)


def _wait_for(condition: Callable[[], bool], *, timeout_s: float) -> bool:
    """Poll `condition` until it holds or `timeout_s` passes (a bound on waiting, not a timed assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()
