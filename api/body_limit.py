"""One request-size limit for every endpoint: bodies over CDS_MAX_BODY_BYTES are refused with 413 before a route
reads them whole, whether their size is declared (Content-Length) or only found while streaming."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.responses import JSONBytes


class BodyTooLargeError(StarletteHTTPException):
    """Raised from inside the body stream. An HTTP exception, so whatever is reading the body (FastAPI's own parser
    turns any other error into a 400) lets it through to the project's error handler as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimit:
    """Pure ASGI middleware: counts body bytes as they arrive and stops reading at the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self._max:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    raise BodyTooLargeError(self._max)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, watching_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONBytes(error_body(413, f"request body larger than {self._max} bytes"), status_code=413)
        # The client may still be sending: the connection is closed after the answer rather than drained.
        response.headers["connection"] = "close"
        await response(scope, receive, send)
