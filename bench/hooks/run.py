"""Hook benchmark: the full patient-view pipeline against FastAPI echoes of the same request, one worker each,
driven by wrk over loopback in the same run. Targets: throughput >= 40 % of the echo's, p99 <= 3x the echo's.

The full pipeline is the `bench-full` service of bench/hooks/services.yaml: normalisation, the bundled ONNX sepsis
model and the NEWS2, qSOFA and SIRS rules, the deterioration policy with its state, and the audit record. The request
carries the Patient, the in-progress Encounter (the model scores the hours since admission: without it the model
would give no score and cost nothing) and 100 vital signs. Each request is for one of PATIENTS patients in turn, as
an EHR's calls are; a fresh hookInstance every time.

The servers stay up for the whole run and are measured in turn, round after round (each baseline, the full
pipeline, NEWS2 alone): this machine's speed drifts by tens of per cent within minutes, so a ratio is taken within
each round and the targets are judged on the median round.

The baselines (bench/hooks/echo_app.py) differ in what the echo itself does with the request. The targets are judged
against the lean echo: it reads and parses the body as the service does, with the service's collector settings, and
nothing else. FastAPI's default echo (the body declared as a dict) spends more than twice the lean echo's CPU in
FastAPI's own body handling, so ratios against it flatter the service; they are printed beside, as is the raw echo,
which does not parse at all (HTTP and the framework alone).

Beside each server's CPU a request, every run prints the load generator's, the local PostgreSQL server's and the
machine's idle time a request, and the last line says what the throughput target leaves the service on this machine:
at 0.40 of the judged echo's rate, the cores' time a request less what wrk and the database server take.

    python -m bench.hooks.run [--rounds 3] [--duration 10] [--connections 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from bench.hooks.delay_relay import DelayRelay

HERE = Path(__file__).resolve().parent
SERVICE = "bench-full"
COMPARED = "bench-news2"
SERVICES_FILE = HERE / "services.yaml"
# The request's patient id is this placeholder; wrk puts one of PATIENTS ids in its place (request.lua).
PATIENT = "__PATIENT__"
PATIENTS = 500
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Run:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    # The server process's CPU time per answered request: steadier than wall-clock figures on a shared machine.
    cpu_ms_per_request: float = 0.0
    # The rest of the machine's time per answered request, over the same run: the load generator's CPU, the local
    # database server's (every PostgreSQL process on this machine; 0 for SQLite or a database elsewhere) and the
    # cores' idle time. With the server's, they say where the machine's time went and what a target leaves.
    wrk_ms_per_request: float = 0.0
    database_ms_per_request: float = 0.0
    idle_ms_per_request: float = 0.0


def hook_request(observations: int = 100) -> dict[str, Any]:
    """A patient-view call with one Patient and `observations` vital signs over the last day."""
    now = datetime.now(UTC)
    codes = [
        ("8867-4", "/min", 88.0),
        ("9279-1", "/min", 18.0),
        ("59408-5", "%", 96.0),
        ("8480-6", "mm[Hg]", 121.0),
        ("8310-5", "Cel", 37.2),
    ]
    entries = []
    for i in range(observations):
        code, unit, value = codes[i % len(codes)]
        at = now - timedelta(minutes=15 * (observations - i))
        entries.append(
            {
                "fullUrl": f"https://ehr.example.org/fhir/Observation/o{i}",
                "resource": {
                    "resourceType": "Observation",
                    "id": f"o{i}",
                    "meta": {"versionId": "1"},
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                    "display": "Vital Signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": code},
                    "subject": {"reference": f"Patient/{PATIENT}"},
                    "effectiveDateTime": at.isoformat(),
                    "valueQuantity": {
                        "value": value + (i % 7),
                        "unit": unit,
                        "system": "http://unitsofmeasure.org",
                        "code": unit,
                    },
                },
            }
        )
    admitted = now - timedelta(hours=30)
    return {
        "hook": "patient-view",
        "hookInstance": "__HOOK_INSTANCE__",
        "context": {"userId": "Practitioner/bench", "patientId": PATIENT, "encounterId": "e-bench"},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": PATIENT,
                "gender": "female",
                "birthDate": "1951-04-01",
                "identifier": [{"system": "urn:oid:1.2.3", "value": f"BENCH-{PATIENT}"}],
            },
            "encounter": {
                "resourceType": "Encounter",
                "id": "e-bench",
                "status": "in-progress",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ACUTE"},
                "subject": {"reference": f"Patient/{PATIENT}"},
                "period": {"start": admitted.isoformat()},
            },
            "vitals": {"resourceType": "Bundle", "type": "searchset", "total": observations, "entry": entries},
        },
    }


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


class _FreshSchema:
    """A PostgreSQL run gets a schema of its own, dropped afterwards: the policy state of an earlier run (the same
    benchmark patients) must not change what this one decides, nor its tables' size what it costs."""

    def __init__(self, base_url: str) -> None:
        self._admin = create_engine(make_url(base_url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.name = f"cds_bench_{uuid.uuid4().hex[:12]}"
        self.url: URL = make_url(base_url).update_query_dict({"options": f"-csearch_path={self.name}"})

    def __enter__(self) -> _FreshSchema:
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.name}"'))
        return self

    def __exit__(self, *_: object) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self._admin.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout_s} s")


def _latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _process_cpu(stat: Path) -> tuple[str, float] | None:
    """A process's name and its user plus system CPU time so far, from its /proc stat file; None if unreadable (no
    /proc, or the process ended)."""
    try:
        text = stat.read_text()
    except OSError:
        return None
    name, _, rest = text[text.find("(") + 1 :].rpartition(")")
    fields = rest.split()
    return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc); 0 where /proc is not there."""
    found = _process_cpu(Path(f"/proc/{pid}/stat"))
    return 0.0 if found is None else found[1]


def _postgres_cpu_seconds() -> float:
    """CPU time so far of every PostgreSQL server process on this machine (its postmaster, backends and helpers)."""
    found = (_process_cpu(stat) for stat in Path("/proc").glob("[0-9]*/stat"))
    return sum(cpu for name, cpu in filter(None, found) if name == "postgres" or name.startswith("postgres:"))


def _idle_seconds() -> float:
    """The machine's idle time so far, summed over its cores (/proc/stat: idle plus iowait); 0 without /proc."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk(
    name: str, url: str, body_file: Path, duration: int, connections: int, server_pid: int = 0,
    local_postgres: bool = False,
) -> Run:  # fmt: skip
    # A run id of its own per wrk run: the warm-up and the measured run must never send the same hookInstance (a
    # repeat is answered from the idempotency record, which is cheaper and would inflate the figures).
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_RUN_ID": uuid.uuid4().hex,
        "BENCH_PATIENTS": str(PATIENTS),
    }
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(HERE / "request.lua"), url]
    database = _postgres_cpu_seconds if local_postgres else lambda: 0.0
    # The servers are children too, but still running: only wrk, waited for, adds to the children's usage.
    before = (_cpu_seconds(server_pid), _children_cpu_seconds(), database(), _idle_seconds())
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    after = (_cpu_seconds(server_pid), _children_cpu_seconds(), database(), _idle_seconds())
    cpu, wrk_cpu, database_cpu, idle = (b - a for a, b in zip(before, after, strict=True))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _latency_ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _latency_ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    per_request = [x * 1000 / requests if requests else 0.0 for x in (cpu, wrk_cpu, database_cpu, idle)]
    return Run(name, rps, p50, p99, int(non_2xx.group(1)) if non_2xx else 0, requests, *per_request)


def _serve(command: list[str], env: dict[str, str], port: int, health_path: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_healthy(f"http://127.0.0.1:{port}{health_path}", process)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass(frozen=True)
class Baseline:
    name: str
    app: str  # the uvicorn app, a factory when `factory`
    factory: bool = False


# bench/hooks/echo_app.py says what each does. The targets are judged against JUDGED.
BASELINES = (
    Baseline("echo", "bench.hooks.echo_app:app"),
    Baseline("echo (settled)", "bench.hooks.echo_app:settled_app", factory=True),
    Baseline("lean echo", "bench.hooks.echo_app:lean_app", factory=True),
    Baseline("raw echo", "bench.hooks.echo_app:raw_app", factory=True),
)
JUDGED = "lean echo"


def _echo_command(baseline: Baseline, port: int) -> list[str]:
    app = ["--factory", baseline.app] if baseline.factory else [baseline.app]
    return [
        sys.executable, "-m", "uvicorn", *app, "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


@dataclass
class Round:
    baselines: dict[str, Run]
    pipeline: Run
    compared: Run

    @property
    def runs(self) -> tuple[Run, ...]:
        return (*self.baselines.values(), self.pipeline, self.compared)

    def throughput_ratio(self, baseline: str = JUDGED) -> float:
        return self.pipeline.requests_per_s / self.baselines[baseline].requests_per_s

    def p99_ratio(self, baseline: str = JUDGED) -> float:
        return self.pipeline.p99_ms / self.baselines[baseline].p99_ms

    def cpu_ratio(self, baseline: str = JUDGED) -> float | None:
        if not self.pipeline.cpu_ms_per_request:
            return None
        return self.baselines[baseline].cpu_ms_per_request / self.pipeline.cpu_ms_per_request


def _measure(
    echos: dict[str, tuple[str, int]], service_url: str, service_pid: int, body_file: Path, args: argparse.Namespace,
    backend: str, local_postgres: bool,
) -> Round:  # fmt: skip
    """One round: each baseline, the full pipeline, NEWS2 alone, each after a short warm-up of its own."""
    baselines = {}
    for name, (url, pid) in echos.items():
        _wrk("warm-up", f"{url}/{SERVICE}", body_file, 3, args.connections)
        baselines[name] = _wrk(
            name, f"{url}/{SERVICE}", body_file, args.duration, args.connections, pid, local_postgres
        )
    services = []
    for name, path in ((f"{SERVICE} ({backend})", SERVICE), (f"{COMPARED} ({backend})", COMPARED)):
        _wrk("warm-up", f"{service_url}/{path}", body_file, 3, args.connections)
        services.append(
            _wrk(name, f"{service_url}/{path}", body_file, args.duration, args.connections, service_pid, local_postgres)
        )
    return Round(baselines, *services)


def _verdict(ratio: float, target: float, at_least: bool) -> str:
    return "met" if (ratio >= target if at_least else ratio <= target) else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument(
        "--database-delay-us",
        type=int,
        default=0,
        help="PostgreSQL only: relay the service's connections through a relay holding each chunk this long each "
        "way (bench/hooks/delay_relay.py), as a database on another host",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    load_before = _load_average()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        database_url = args.database_url
        if database_url.startswith("postgresql"):
            url = stack.enter_context(_FreshSchema(database_url)).url
            if args.database_delay_us > 0:
                relay = DelayRelay((url.host or "127.0.0.1", url.port or 5432), args.database_delay_us / 1e6).start()
                stack.callback(relay.stop)
                url = url.set(host="127.0.0.1", port=relay.port)
            database_url = url.render_as_string(hide_password=False)
        elif args.database_delay_us > 0:
            parser.error("--database-delay-us needs a PostgreSQL --database-url")
        body_file = Path(tmp) / "request.json"
        body_file.write_text(json.dumps(hook_request()))
        size_kb = body_file.stat().st_size / 1024
        env = {
            **os.environ,
            "CDS_DATA_DIR": tmp,
            "CDS_DATABASE_URL": database_url,
            "CDS_SERVICES_FILE": str(SERVICES_FILE),
            "CDS_LOG_LEVEL": "WARNING",
            "CDS_ENVIRONMENT": "test",
            # The benchmark measures the pipeline; token verification has its own tests.
            "CDS_SECURITY": '{"enabled": false}',
        }
        backend = "postgresql" if args.database_url.startswith("postgresql") else "sqlite"
        # The database server's CPU is counted only when it runs on this machine, where it shares the cores.
        local_hosts = (None, "127.0.0.1", "localhost", "::1")
        local_postgres = backend == "postgresql" and make_url(args.database_url).host in local_hosts
        subprocess.run([sys.executable, "-m", "cdsctl", "db", "upgrade"], env=env, check=True, capture_output=True)

        echos: dict[str, tuple[str, int]] = {}
        for baseline in BASELINES:
            port = _free_port()
            server = _serve(_echo_command(baseline, port), env, port, "/docs")
            stack.callback(_stop, server)
            echos[baseline.name] = (f"http://127.0.0.1:{port}/cds-services", server.pid)
        service_port = _free_port()
        service = _serve(
            [sys.executable, "-m", "cdsctl", "serve", "--port", str(service_port)], env, service_port, "/healthz"
        )
        stack.callback(_stop, service)
        rounds = [
            _measure(
                echos,
                f"http://127.0.0.1:{service_port}/cds-services",
                service.pid,
                body_file,
                args,
                backend,
                local_postgres,
            )
            for _ in range(args.rounds)
        ]

    print(
        f"hook benchmark: patient-view, 1 Patient + 1 Encounter + 100 Observations ({size_kb:.0f} KB), "
        f"{PATIENTS} patients in turn, "
        f"wrk -t1 -c{args.connections} -d{args.duration}s, one uvicorn worker each, {args.rounds} rounds"
    )
    print(f"load average before the run: {load_before}; after: {_load_average()}")
    if args.database_delay_us > 0:
        print(f"PostgreSQL through a relay holding each chunk {args.database_delay_us} us each way")
    print(
        f"{'':26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'CPU ms/req':>11}   "
        f"{'wrk':>5} {'db':>5} {'idle':>5}  (ms/req)"
    )
    for number, measured in enumerate(rounds, 1):
        print(f"round {number}")
        for run in measured.runs:
            print(
                f"  {run.name:24} {run.requests_per_s:9.0f} {run.p50_ms:8.2f} {run.p99_ms:8.2f} {run.non_2xx:8d} "
                f"{run.cpu_ms_per_request:11.2f}   {run.wrk_ms_per_request:5.2f} {run.database_ms_per_request:5.2f} "
                f"{run.idle_ms_per_request:5.2f}"
            )
        print(
            "  ratios (throughput, p99) against "
            + ", ".join(
                f"{name}: {measured.throughput_ratio(name):.2f}, {measured.p99_ratio(name):.2f}"
                for name in measured.baselines
            )
        )
    if any(run.non_2xx for measured in rounds for run in measured.runs):
        print("INVALID RUN: some responses were not 2xx, so the figures above measure errors, not the pipeline")
        return 1
    print(f"targets, for {SERVICE} (the model and every rule scorer), median of {len(rounds)} rounds:")
    for name in (JUDGED, *(b.name for b in BASELINES if b.name != JUDGED)):
        throughput = statistics.median(r.throughput_ratio(name) for r in rounds)
        p99 = statistics.median(r.p99_ratio(name) for r in rounds)
        cpus = [c for r in rounds if (c := r.cpu_ratio(name)) is not None]
        cpu = f", CPU ratio {statistics.median(cpus):.2f}" if cpus else ""
        judged = "JUDGED" if name == JUDGED else "beside"
        print(
            f"  {judged} against the {name:15}: throughput ratio {throughput:.2f} (target >= 0.40: "
            f"{_verdict(throughput, 0.40, True)}), p99 ratio {p99:.2f} (target <= 3.00: {_verdict(p99, 3.0, False)})"
            f"{cpu}"
        )
    print("  (CPU ratio: the baseline's CPU per request / the pipeline's; not a target, steadier than the others)")
    _print_budget(rounds)
    return 0


def _print_budget(rounds: list[Round]) -> None:
    """What the throughput target leaves for the service on this machine: at 0.40 of the judged echo's rate the cores
    give each request so much time, of which the load generator and a local database server take their share."""
    cores = os.cpu_count() or 1
    target = statistics.median(0.40 * r.baselines[JUDGED].requests_per_s for r in rounds)
    machine = cores * 1000 / target
    wrk = statistics.median(r.pipeline.wrk_ms_per_request for r in rounds)
    database = statistics.median(r.pipeline.database_ms_per_request for r in rounds)
    service = statistics.median(r.pipeline.cpu_ms_per_request for r in rounds)
    room = machine - wrk - database
    print(
        f"budget at the throughput target ({target:.0f} req/s, 0.40 of the {JUDGED}; medians): {cores} cores give "
        f"{machine:.2f} ms a request, the wall time {1000 / target:.2f} ms (what one interpreter lock can give); the "
        f"load generator takes {wrk:.2f} and the local database server {database:.2f}, leaving {room:.2f} ms of CPU "
        f"for the service, which used {service:.2f} ({service / room:.1f}x the room)"
        if room > 0
        else f"budget at the throughput target ({target:.0f} req/s): the load generator and the database alone take "
        f"more than the {machine:.2f} ms of CPU a request that {cores} cores give"
    )


if __name__ == "__main__":
    raise SystemExit(main())
