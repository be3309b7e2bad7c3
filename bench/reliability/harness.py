"""What every reliability run shares: a fresh PostgreSQL schema, `cdsctl serve` / `cdsctl worker` as child
processes, their resident memory, the machine's load, and the audit chain check at the end."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLI = [sys.executable, "-m", "cdsctl"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


@contextmanager
def fresh_schema(base_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL schema for one run (dropped afterwards), as a URL whose connections land in it."""
    url = make_url(base_url)
    name = f"bench_reliability_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def service_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CDS_ENVIRONMENT": "test",
        "CDS_DATA_DIR": str(data_dir),
        "CDS_DATABASE_URL": database_url,
        "CDS_LOG_LEVEL": "WARNING",
        "CDS_PSEUDONYM_SALT": "bench-reliability-salt",
        # The runs measure the service under faults; token verification has its own tests.
        "CDS_SECURITY": '{"enabled": false}',
        **extra,
    }


def migrate(env: dict[str, str]) -> None:
    subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=300)


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def rss_mib(self) -> float:
        """Resident memory of the server and every process under it (the uvicorn workers)."""
        return sum(_rss_kib(pid) for pid in _tree(self.process.pid)) / 1024

    def alive(self) -> bool:
        return self.process.poll() is None


@contextmanager
def serve(env: dict[str, str], log_path: Path, *, workers: int = 1) -> Iterator[Service]:
    port = free_port()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    service = Service(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_healthy(service)
        yield service
    finally:
        stop(process)


def wait_healthy(service: Service, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"server exited with {service.process.returncode}; see {service.log_path}")
        try:
            if httpx.get(f"{service.base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server not ready in {timeout_s} s; see {service.log_path}")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def audit_verify(env: dict[str, str]) -> tuple[bool, str]:
    """`cdsctl audit verify` on the run's database: (clean, what it printed)."""
    result = subprocess.run([*CLI, "audit", "verify"], env=env, capture_output=True, text=True, timeout=300)
    return result.returncode == 0, (result.stdout + result.stderr).strip().splitlines()[0]


def _tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                queue.extend(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return pids


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def stored_cards(database_url: str, hook_instances: list[str]) -> dict[str, int]:
    """How many cards each recorded hook call answered with; a hookInstance missing here was never recorded."""
    from sqlalchemy import select

    from store.tables import HookCallRow

    engine = create_engine(database_url, poolclass=NullPool)
    found: dict[str, int] = {}
    try:
        with engine.connect() as connection:
            for start in range(0, len(hook_instances), 1000):
                chunk = hook_instances[start : start + 1000]
                query = select(HookCallRow.hook_instance, HookCallRow.response).where(
                    HookCallRow.hook_instance.in_(chunk)
                )
                for instance, response in connection.execute(query):
                    found[instance] = len((response or {}).get("cards", []))
    finally:
        engine.dispose()
    return found


def hook_records(database_url: str) -> tuple[int, int]:
    """(hook calls recorded, hook-call audit records): equal when no call was half-written."""
    from sqlalchemy import func, select

    from store.tables import AuditRow, HookCallRow

    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            calls = connection.scalar(select(func.count()).select_from(HookCallRow))
            audits = connection.scalar(
                select(func.count()).select_from(AuditRow).where(AuditRow.subject.like("hook:%"))
            )
    finally:
        engine.dispose()
    return int(calls or 0), int(audits or 0)


class Poller:
    """Polls a URL every `interval_s` on its own thread: (seconds since `origin`, status or 0, latency seconds)."""

    def __init__(self, url: str, origin: float, interval_s: float = 0.25, timeout_s: float = 5.0) -> None:
        import threading

        self.samples: list[tuple[float, int, float]] = []
        self._url, self._origin, self._interval, self._timeout = url, origin, interval_s, timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._timeout + 1)

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get(self._url).status_code
                except httpx.HTTPError:
                    status = 0
                self.samples.append((started - self._origin, status, time.perf_counter() - started))
                self._stop.wait(self._interval)


def notify_settings(receiver_url: str, **overrides: Any) -> str:
    """CDS_NOTIFY for a run: one webhook target `bench`, quick polling, and a short lease so that a killed worker's
    rows are taken over within seconds (the lease must still outlast a send's timeouts)."""
    settings: dict[str, Any] = {
        "webhooks": {"bench": {"url": receiver_url, "secret": "bench-reliability-secret"}},
        "poll_interval_seconds": 0.2,
        "lease_seconds": 6,
        "connect_timeout_seconds": 1,
        "read_timeout_seconds": 3,
        "backoff_base_seconds": 0.5,
        "backoff_cap_seconds": 5,
        "max_attempts": 10,
        "batch_size": 20,
        **overrides,
    }
    return json.dumps(settings)


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log_file:
        return subprocess.Popen([*CLI, "worker"], env=env, stdout=log_file, stderr=subprocess.STDOUT)


class Enqueuer:
    """Stores webhook messages as the service's transactions do, one commit per message, on one engine."""

    def __init__(self, database_url: str) -> None:
        from store.db import make_engine

        self._engine = make_engine(database_url)

    def __call__(self, keys: list[str]) -> None:
        from notify.port import ChannelName, OutboundMessage
        from notify.unit_of_work import SqlNotifyUnitOfWork

        for key in keys:
            with SqlNotifyUnitOfWork(self._engine) as uow:
                uow.outbox.enqueue(OutboundMessage(ChannelName.WEBHOOK, "bench", {"event": "bench", "n": key}, key))
                uow.commit()

    def close(self) -> None:
        self._engine.dispose()


def outbox_states(database_url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from store.tables import OutboxRow

    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)).all()
    finally:
        engine.dispose()
    return {state: int(count) for state, count in rows}
