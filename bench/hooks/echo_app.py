"""The baselines: FastAPI endpoints that take the same hook request and echo it back, each a uvicorn app of its own.

- `app`: the echo as FastAPI writes it by default: the body declared as a `dict`, so FastAPI parses it with the
  standard library, validates it and encodes the answer field by field. The first baseline of the benchmark.
- `settled_app`: the same endpoint in a process given the service's collector settings (cdsctl.heap): the default
  echo's latency tail is mostly its full collections, which the service does not pay.
- `lean_app`: reads the raw body, parses it with orjson as the service does and writes it back with orjson, in a
  settled process: what any endpoint that reads this request must pay, without FastAPI's body handling (less than
  half the default echo's CPU). The targets are judged against it, the strictest baseline that still parses.
- `raw_app`: hands the body back unread: the cost of HTTP and the framework alone, the ceiling of any endpoint.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/cds-services/{service_id}")
async def echo(service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return body


def settled_app() -> FastAPI:
    """The uvicorn factory of the settled echo (`--factory`)."""
    from cdsctl.heap import settle_heap

    settle_heap()
    return app


def lean_app() -> FastAPI:
    """The uvicorn factory of the lean echo (`--factory`)."""
    from cdsctl.heap import settle_heap

    lean = FastAPI()

    @lean.post("/cds-services/{service_id}")
    async def echo_parsed(service_id: str, request: Request) -> Response:
        body = orjson.loads(await request.body())
        return Response(orjson.dumps(body), media_type="application/json")

    settle_heap()
    return lean


def raw_app() -> FastAPI:
    """The uvicorn factory of the raw echo (`--factory`)."""
    from cdsctl.heap import settle_heap

    raw = FastAPI()

    @raw.post("/cds-services/{service_id}")
    async def echo_unread(service_id: str, request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    settle_heap()
    return raw
