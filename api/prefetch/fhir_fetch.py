"""The FHIR server adapter of prefetch: checks the request's fhirServer, reads one relative URL with the bearer token,
follows searchset paging on the server's own origin only, and merges the pages into one Bundle."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from api.prefetch.model import IssueReason, PrefetchRequestError, UnavailableReason
from cdsctl.logs import get_logger
from clinical.patients import pseudonymise

log = get_logger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def make_fhir_client(
    *, connect_timeout: float = 2.0, read_timeout: float = 5.0, max_connections: int = 20, trust_env: bool = False
) -> httpx.AsyncClient:
    """The one AsyncClient an app shares for prefetch. Redirects are not followed: one could lead off the FHIR
    server's origin with the token. `trust_env` is off so that no netrc or proxy setting changes where tokens go."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2),
        follow_redirects=False,
        trust_env=trust_env,
        headers={"Accept": "application/fhir+json", "User-Agent": "cds-control-plane"},
    )


def origin_of(url: httpx.URL) -> Origin:
    return url.scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(url.scheme, 0)


@dataclass(frozen=True, slots=True)
class FhirServer:
    """The FHIR server of one hook call: its base URL (no trailing slash), origin and access token, if any."""

    base: str
    origin: Origin
    token: str | None


def parse_fhir_server(
    request: Mapping[str, Any], *, allow_http: bool, allowed_origins: Collection[str] | None = None
) -> FhirServer | None:
    """The request's fhirServer and token, or None without a fhirServer. Raises PrefetchRequestError (400)."""
    raw, authorization = request.get("fhirServer"), request.get("fhirAuthorization")
    if raw is None:
        if authorization is not None:
            raise PrefetchRequestError("fhirAuthorization is only allowed together with fhirServer")
        return None
    try:
        url = httpx.URL(raw) if isinstance(raw, str) else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in _DEFAULT_PORTS or not url.host:
        raise PrefetchRequestError("fhirServer must be an absolute https URL")
    if url.scheme == "http" and not allow_http:
        raise PrefetchRequestError("fhirServer must use https")
    if url.userinfo or url.query or url.fragment:
        raise PrefetchRequestError("fhirServer must be a base URL without credentials, query or fragment")
    origin = origin_of(url)
    if allowed_origins is not None and origin not in {origin_of(httpx.URL(o)) for o in allowed_origins}:
        raise PrefetchRequestError("fhirServer is not a FHIR server this service is configured to use")
    return FhirServer(base=str(url).rstrip("/"), origin=origin, token=_access_token(authorization))


def _access_token(authorization: object) -> str | None:
    if authorization is None:
        return None
    if not isinstance(authorization, Mapping):
        raise PrefetchRequestError("fhirAuthorization must be an object")
    token, token_type = authorization.get("access_token"), authorization.get("token_type", "Bearer")
    if not isinstance(token, str) or not token.strip():
        raise PrefetchRequestError("fhirAuthorization.access_token must be a non-empty string")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise PrefetchRequestError("fhirAuthorization.token_type must be Bearer")
    return token


class FetchError(Exception):
    def __init__(self, reason: UnavailableReason, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _NotFoundError(Exception):
    pass


@dataclass(slots=True)
class Fetched:
    """What one key's fetch produced: the value (None for no data) and issues worth recording."""

    value: object | None
    issues: list[tuple[IssueReason, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_pages: int = 5
    max_entries: int = 1000
    max_bytes: int = 10 * 1024 * 1024


class KeyFetcher:
    """Fetches prefetch keys from one FHIR server for one hook call."""

    def __init__(self, client: httpx.AsyncClient, server: FhirServer, limits: FetchLimits, salt: str) -> None:
        if server.token is None:
            raise ValueError("a KeyFetcher needs an access token")
        self._client = client
        self._server = server
        self._limits = limits
        self._salt = salt

    async def fetch(self, key: str, relative_url: str) -> Fetched:
        """Raises FetchError when the key cannot be provided; never logs the URL, only a salted hash of it."""
        started = time.perf_counter()
        resource_type = relative_url.partition("?")[0].partition("/")[0]
        target = pseudonymise(self._salt, relative_url)[:16]
        try:
            fetched, pages = await self._fetch(relative_url)
        except FetchError as exc:
            log.warning(
                "prefetch.fetch_failed",
                key=key,
                resource_type=resource_type,
                target=target,
                reason=str(exc.reason),
                status=exc.status,
                ms=_ms(started),
            )
            raise
        log.info(
            "prefetch.fetched",
            key=key,
            resource_type=resource_type,
            target=target,
            pages=pages,
            issues=[str(reason) for reason, _ in fetched.issues],
            ms=_ms(started),
        )
        return fetched

    async def _fetch(self, relative_url: str) -> tuple[Fetched, int]:
        url = f"{self._server.base}/{relative_url}"
        is_read = "?" not in relative_url and "/" in relative_url
        try:
            first = await self._get(url)
        except _NotFoundError:
            if is_read:
                return Fetched(None, [(IssueReason.NOT_FOUND, "the server has no such resource")]), 1
            raise FetchError(UnavailableReason.SERVER_ERROR, 404) from None
        if first["resourceType"] == "OperationOutcome":
            return Fetched(None, [(IssueReason.OPERATION_OUTCOME, "the FHIR server answered an OperationOutcome")]), 1
        if first["resourceType"] != "Bundle" or first.get("type") != "searchset":
            return Fetched(first), 1
        return await self._follow_pages(url, first)

    async def _follow_pages(self, url: str, first: dict[str, Any]) -> tuple[Fetched, int]:
        issues: list[tuple[IssueReason, str]] = []
        entries, pages, page = list(_entries(first)), 1, first
        while (next_url := _next_link(page, url)) is not None:
            if pages >= self._limits.max_pages:
                issues.append((IssueReason.PAGE_LIMIT, f"stopped after {pages} pages"))
                break
            if len(entries) >= self._limits.max_entries:
                break
            if origin_of(next_url) != self._server.origin or next_url.userinfo:
                issues.append((IssueReason.FOREIGN_NEXT_LINK, "a next link left the FHIR server; not followed"))
                break
            url = str(next_url)
            try:
                page = await self._get(url)
            except _NotFoundError:
                raise FetchError(UnavailableReason.SERVER_ERROR, 404) from None
            if page["resourceType"] != "Bundle" or page.get("type") != "searchset":
                raise FetchError(UnavailableReason.INVALID_RESPONSE)
            entries.extend(_entries(page))
            pages += 1
        if len(entries) >= self._limits.max_entries and (len(entries) > self._limits.max_entries or next_url):
            issues.append((IssueReason.ENTRY_LIMIT, f"cut at {self._limits.max_entries} entries"))
            entries = entries[: self._limits.max_entries]
        # One searchset with every entry and no links: the spec forbids handing on next-page links.
        merged: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if isinstance(first.get("total"), int):
            merged["total"] = first["total"]
        return Fetched(merged, issues), pages

    async def _get(self, url: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._server.token}"}
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status in (401, 403):
                    raise FetchError(UnavailableReason.DENIED, status)
                if status in (404, 410):
                    raise _NotFoundError
                if status != 200:
                    raise FetchError(UnavailableReason.SERVER_ERROR, status)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > self._limits.max_bytes:
                        raise FetchError(UnavailableReason.INVALID_RESPONSE, status)
        except httpx.TimeoutException:
            raise FetchError(UnavailableReason.TIMEOUT) from None
        except httpx.TransportError:
            raise FetchError(UnavailableReason.UNREACHABLE) from None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FetchError(UnavailableReason.INVALID_RESPONSE, status) from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("resourceType"), str):
            raise FetchError(UnavailableReason.INVALID_RESPONSE, status)
        return parsed


def _entries(bundle: dict[str, Any]) -> list[Any]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FetchError(UnavailableReason.INVALID_RESPONSE)
    return entries


def _next_link(bundle: dict[str, Any], current: str) -> httpx.URL | None:
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            try:
                # Relative next links are resolved against the page they came from.
                return httpx.URL(current).join(link["url"])
            except httpx.InvalidURL:
                raise FetchError(UnavailableReason.INVALID_RESPONSE) from None
    return None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
