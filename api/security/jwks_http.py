"""Fetching a JWK Set over HTTP: bounded time and size, no redirects, and the cache lifetime the server asks for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

# A JWK Set of a few keys is a few kilobytes; anything far larger is not one, and is not read into memory.
MAX_JWKS_BYTES = 64 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


class JwksFetchError(Exception):
    """The JWK Set could not be fetched or was not a JSON object."""


@dataclass(frozen=True)
class FetchedJwks:
    document: dict[str, Any]
    # Seconds the server allows caching for; None when it said nothing, 0 when it forbade caching.
    max_age: int | None


class JwksFetcher(Protocol):
    def fetch(self, url: str) -> FetchedJwks: ...


def cache_max_age(cache_control: str | None) -> int | None:
    """The max-age of a Cache-Control header; 0 for no-store/no-cache; None when absent or unreadable."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


class HttpJwksFetcher:
    """Fetches with httpx. Redirects are not followed: a redirect could lead off the configured URL allow-list."""

    def __init__(self, *, timeout_s: float = 3.0, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout_s), follow_redirects=False, headers={"Accept": "application/json"}
        )

    def fetch(self, url: str) -> FetchedJwks:
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise JwksFetchError(f"JWKS answered HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
                    raise JwksFetchError("JWKS larger than allowed")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksFetchError("JWKS larger than allowed")
                max_age = cache_max_age(response.headers.get("cache-control"))
        except httpx.HTTPError as exc:
            raise JwksFetchError(f"JWKS fetch failed: {type(exc).__name__}") from exc
        try:
            document = orjson.loads(bytes(body))
        except orjson.JSONDecodeError as exc:
            raise JwksFetchError("JWKS is not JSON") from exc
        if not isinstance(document, dict):
            raise JwksFetchError("JWKS is not a JSON object")
        return FetchedJwks(document=document, max_age=max_age)

    def close(self) -> None:
        self._client.close()
