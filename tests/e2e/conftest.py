"""The real server as an EHR sees it: `cdsctl db upgrade`, then `cdsctl serve` on a free port, called over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

_STARTUP_TIMEOUT_S = 90


@dataclass
class RunningServer:
    base_url: str
    database_url: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per test module and backend; tests tell their records apart by hookInstance."""
    with served(module_database_url, tmp_path_factory.mktemp("server"), salt="e2e-test-salt") as running:
        yield running


@contextmanager
def served(
    database_url: str, tmp_path: Path, *, salt: str, extra_env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """`cdsctl db upgrade`, then `cdsctl serve` on a free port until the block ends (then SIGTERM)."""
    env = {
        **os.environ,
        "CDS_ENVIRONMENT": "test",
        "CDS_DATA_DIR": str(tmp_path / "var"),
        "CDS_DATABASE_URL": database_url,
        "CDS_LOG_JSON": "true",
        "CDS_LOG_LEVEL": "DEBUG",
        "CDS_PSEUDONYM_SALT": salt,
        # Generous: these tests check what is recorded, on a noisy 2-core machine; the deadline has its own tests.
        "CDS_HOOK_DEADLINE_SECONDS": "10",
        "CDS_SECURITY": '{"enabled": false}',
        **(extra_env or {}),
    }
    cli = [sys.executable, "-m", "cdsctl"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(base_url, process, log_path)
            yield RunningServer(base_url=base_url, database_url=database_url, log_path=log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server did not become healthy in {_STARTUP_TIMEOUT_S} s")
