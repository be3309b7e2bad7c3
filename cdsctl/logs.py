"""Structured logging: JSON lines through structlog, a correlation id per hook call, and no PHI ever.

Log calls pass only pseudonymous keys, counts, codes and timings. As a second line of defence, values under keys
that name PHI are replaced before rendering, so a careless `log.info(..., name=...)` cannot leak.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

# Keys whose values are never written, whatever the caller passed.
_PHI_KEYS = frozenset(
    {
        "name",
        "family",
        "given",
        "birthdate",
        "birth_date",
        "identifier",
        "mrn",
        "address",
        "telecom",
        "phone",
        "email",
        "patient_id",
        "patientid",
        "value",
        "text",
        "body",
        "prefetch",
        "authorization",
        "access_token",
    }
)


def _redact_phi(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in _PHI_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def _orjson_text(event: Any, **options: Any) -> str:
    # orjson renders a log line several times faster than the json module; what it cannot encode becomes str().
    return orjson.dumps(event, default=str).decode()


def configure_logging(level: str = "INFO", *, json: bool = True, stream: Any = None) -> None:
    """Route stdlib logging and structlog through one JSON renderer. Safe to call more than once."""
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_phi,
    ]
    structlog.configure(
        # Below the level, an event is dropped first, before any processor runs: a hook call's per-call line costs
        # next to nothing when it is not written.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access logs would duplicate our own per-request line; uvicorn's error log stays.
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
