"""JSON responses rendered with orjson: the hook's cards are plain dicts, so no model round-trip is needed."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSONBytes(JSONResponse):
    # A JSONResponse subclass so that FastAPI documents routes answering with it as JSON, not as a string.
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
