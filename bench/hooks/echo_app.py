"""The baseline: a bare FastAPI endpoint that parses the same hook request and echoes it back.

`settled_app` is the same endpoint in a process given the service's collector settings (cdsctl.heap): the bare echo's
latency tail is mostly its full collections, which the service does not pay, so its p99 alone would flatter the
service's ratio."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/cds-services/{service_id}")
async def echo(service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return body


def settled_app() -> FastAPI:
    """The uvicorn factory of the settled echo (`--factory`)."""
    from cdsctl.heap import settle_heap

    settle_heap()
    return app
