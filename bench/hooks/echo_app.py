"""The baseline: a bare FastAPI endpoint that parses the same hook request and echoes it back."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/cds-services/{service_id}")
async def echo(service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return body
