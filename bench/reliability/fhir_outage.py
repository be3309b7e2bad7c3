"""The EHR's FHIR server slow, then down, then back, while hook calls that need prefetch fetched from it arrive:
every call must still be answered within the prefetch timeout plus the hook deadline (412 when the data could
not be fetched, cards or {"cards": []} otherwise), and answers return to normal once the server is back.

    python -m bench.reliability.fhir_outage [--phase 10] [--rate 5] [--slow 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.reliability import harness
from bench.reliability.load import SERVICE, open_loop, percentile
from tests.fhir_server import FhirServerStandIn

PHASES = ("normal", "slow", "down", "back")


def _patients(server: FhirServerStandIn, count: int) -> list[str]:
    now = datetime.now(UTC)
    codes = [("8867-4", "/min", 92.0), ("9279-1", "/min", 19.0), ("59408-5", "%", 95.0), ("8480-6", "mm[Hg]", 118.0)]
    ids = []
    for n in range(count):
        patient = f"rel{n}"
        ids.append(patient)
        server.add({"resourceType": "Patient", "id": patient, "gender": "male", "birthDate": "1950-01-01"})
        for i in range(20):
            code, unit, value = codes[i % len(codes)]
            server.add(
                {
                    "resourceType": "Observation",
                    "id": f"{patient}-o{i}",
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
                    "subject": {"reference": f"Patient/{patient}"},
                    "effectiveDateTime": (now - timedelta(minutes=30 * (20 - i))).isoformat(),
                    "valueQuantity": {
                        "value": value,
                        "unit": unit,
                        "system": "http://unitsofmeasure.org",
                        "code": unit,
                    },
                }
            )
    return ids


def _bodies(base_url: str, patients: list[str]) -> Any:
    rng = random.Random(8)

    def body() -> tuple[str, bytes]:
        instance = str(uuid.uuid4())
        request = {
            "hook": "patient-view",
            "hookInstance": instance,
            "fhirServer": base_url,
            "fhirAuthorization": {
                "access_token": "bench-token",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "cds-control-plane",
            },
            "context": {"userId": "Practitioner/bench", "patientId": rng.choice(patients)},
        }
        return instance, json.dumps(request).encode()

    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", type=float, default=10, help="seconds of each phase: normal, slow, down, back")
    parser.add_argument("--rate", type=float, default=5, help="hook calls per second, open loop")
    parser.add_argument("--slow", type=float, default=2.0, help="seconds the slow FHIR server takes to answer")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    prefetch_timeout, deadline = 0.6, 1.0

    fhir = FhirServerStandIn()
    port = int(fhir.origin.rsplit(":", 1)[1])
    patients = _patients(fhir, 50)
    servers = [fhir]
    switched: list[tuple[str, float]] = [("normal", 0.0)]

    def inject(elapsed: float) -> None:
        phase = min(int(elapsed // args.phase), len(PHASES) - 1)
        if phase < len(switched):
            return
        name = PHASES[phase]
        if name == "slow":
            servers[-1].delay(args.slow)
        elif name == "down":
            servers[-1].stop()
        elif name == "back":
            back = FhirServerStandIn(port=port)
            _patients(back, len(patients))
            servers.append(back)
        switched.append((name, elapsed))

    with tempfile.TemporaryDirectory() as tmp, harness.fresh_schema(args.database_url) as database_url:
        env = harness.service_env(
            database_url,
            Path(tmp),
            CDS_FHIR_ALLOW_HTTP="true",
            CDS_PREFETCH_TIMEOUT_SECONDS=str(prefetch_timeout),
            CDS_HOOK_DEADLINE_SECONDS=str(deadline),
        )
        harness.migrate(env)
        load = harness.load_average()
        try:
            with harness.serve(env, Path(tmp) / "server.log", workers=args.workers) as service:
                started = time.perf_counter()
                outcomes = asyncio.run(
                    open_loop(
                        f"{service.base_url}/cds-services/{SERVICE}",
                        rate=args.rate,
                        duration_s=args.phase * len(PHASES),
                        bodies=_bodies(fhir.base_url, patients),
                        on_tick=inject,
                    )
                )
                wall = time.perf_counter() - started
                alive = service.alive()
        finally:
            for server in servers:
                server.stop()
        clean, verify = harness.audit_verify(env)

    bound = prefetch_timeout + deadline
    print(
        f"FHIR server outage: {args.workers} workers, {args.rate:g} hook calls/s needing prefetch fetched "
        f"(Patient + 20 vitals), {args.phase:g} s per phase over {wall:.0f} s; slow = {args.slow:g} s per answer; "
        f"prefetch timeout {prefetch_timeout:g} s + deadline {deadline:g} s = {bound:g} s; {load} at start"
    )
    print(f"{'phase':>7} {'calls':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  statuses")
    starts = [at for _, at in switched] + [float("inf")]
    late = 0
    for n, (name, _) in enumerate(switched):
        group = [o for o in outcomes if starts[n] <= o.sent_at < starts[n + 1]]
        latencies = [o.latency_s * 1000 for o in group]
        statuses = Counter("200+cards" if o.cards else str(o.status or o.error) for o in group)
        late += sum(1 for o in group if o.latency_s > bound + 0.5)
        print(
            f"{name:>7} {len(group):6d} {percentile(latencies, 50):7.0f} {percentile(latencies, 99):7.0f} "
            f"{max(latencies, default=0):7.0f}  {dict(sorted(statuses.items()))}"
        )
    crashed = sum(1 for o in outcomes if o.status >= 500 or o.status == 0)
    print(f"answers later than {bound + 0.5:g} s: {late}; 5xx or no answer: {crashed}; server alive: {alive}")
    print(f"audit verify: {'clean' if clean else 'BROKEN'} ({verify})")
    return 0 if clean and alive and late == 0 and crashed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
