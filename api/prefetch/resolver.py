"""Resolves a CDS service's prefetch for one hook call: what the EHR sent is used as is, what it left out is fetched
from its FHIR server concurrently under one deadline, and required data that cannot be had becomes a 412."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from api.prefetch.fhir_fetch import Fetched, FetchError, FetchLimits, FhirServer, KeyFetcher, parse_fhir_server
from api.prefetch.model import (
    IssueReason,
    PrefetchIssue,
    PrefetchRequestError,
    PrefetchUnavailable,
    ResolvedPrefetch,
    UnavailableReason,
    summarise,
)
from api.prefetch.templates import UnfulfillableTemplateError, render_template
from cdsctl.logs import get_logger

log = get_logger(__name__)


class PrefetchResolver:
    """One per app, sharing its httpx client; `timeout` is the deadline for all of a call's fetches together."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        allow_http: bool,
        max_pages: int = 5,
        max_entries: int = 1000,
        timeout: float = 0.8,
        max_response_bytes: int = 10 * 1024 * 1024,
        allowed_origins: Collection[str] | None = None,
        salt: str,
    ) -> None:
        if max_pages < 1 or max_entries < 1 or timeout <= 0:
            raise ValueError("max_pages, max_entries and timeout must be positive")
        self._client = client
        self._allow_http = allow_http
        self._allowed_origins = allowed_origins
        self._limits = FetchLimits(max_pages=max_pages, max_entries=max_entries, max_bytes=max_response_bytes)
        self._timeout = timeout
        self._salt = salt

    async def resolve(
        self,
        templates: Mapping[str, str],
        request: Mapping[str, Any],
        *,
        optional: Collection[str] = (),
        fetch_after_operation_outcome: bool = False,
    ) -> ResolvedPrefetch:
        """Every template key mapped to its data or None. Keys in `optional` that cannot be had become None with an
        issue instead of a 412; with `fetch_after_operation_outcome` an OperationOutcome sent by the EHR is
        recorded and the key fetched as if it were missing.

        Raises PrefetchRequestError (answer 400) and PrefetchUnavailable (answer 412).
        """
        given = request.get("prefetch") or {}
        if not isinstance(given, Mapping):
            raise PrefetchRequestError("prefetch must be a JSON object")
        server = parse_fhir_server(request, allow_http=self._allow_http, allowed_origins=self._allowed_origins)
        context = request.get("context")
        context = context if isinstance(context, Mapping) else {}
        values: dict[str, object | None] = {}
        issues = [PrefetchIssue(k, IssueReason.UNREQUESTED_KEY) for k in sorted(set(given) - set(templates))]
        to_fetch: dict[str, str] = {}
        for key, template in templates.items():
            if key in given and not self._refetch(given[key], fetch_after_operation_outcome):
                values[key] = _given_value(key, given[key], issues)
                continue
            if key in given:
                _given_value(key, given[key], issues)  # records the OperationOutcome before fetching instead
            try:
                to_fetch[key] = render_template(template, context)
            except UnfulfillableTemplateError as exc:
                # The data the template names does not exist for this call (e.g. a PractitionerRole id for a
                # Practitioner user): a CDS Client would send null, so this is no data rather than a 412.
                values[key] = None
                issues.append(PrefetchIssue(key, IssueReason.TEMPLATE_UNFULFILLABLE, str(exc)))
        failures = await self._fetch_all(server, to_fetch, values, issues)
        required = {key: reason for key, reason in failures.items() if key not in optional}
        if required:
            unavailable = PrefetchUnavailable(required, summarise(required.values()), issues)
            log.info("prefetch.unavailable", keys=list(unavailable.keys), reason=str(unavailable.reason))
            raise unavailable
        for key in failures:
            values[key] = None
        fetched = [key for key in to_fetch if key not in failures]
        return ResolvedPrefetch(values={key: values[key] for key in templates}, fetched=fetched, issues=issues)

    @staticmethod
    def _refetch(value: object, fetch_after_operation_outcome: bool) -> bool:
        return fetch_after_operation_outcome and _is_operation_outcome(value)

    async def _fetch_all(
        self,
        server: FhirServer | None,
        to_fetch: Mapping[str, str],
        values: dict[str, object | None],
        issues: list[PrefetchIssue],
    ) -> dict[str, UnavailableReason]:
        """Fetches every key concurrently; fills `values` and `issues` and answers the keys that failed."""
        if not to_fetch:
            return {}
        if server is None or server.token is None:
            reason = UnavailableReason.NO_FHIR_SERVER if server is None else UnavailableReason.NO_ACCESS_TOKEN
            failures = dict.fromkeys(to_fetch, reason)
        else:
            failures = await self._fetch_concurrently(
                KeyFetcher(self._client, server, self._limits, self._salt), to_fetch, values, issues
            )
        issues.extend(PrefetchIssue(key, IssueReason.UNAVAILABLE, str(reason)) for key, reason in failures.items())
        return failures

    async def _fetch_concurrently(
        self,
        fetcher: KeyFetcher,
        to_fetch: Mapping[str, str],
        values: dict[str, object | None],
        issues: list[PrefetchIssue],
    ) -> dict[str, UnavailableReason]:
        tasks = {key: asyncio.ensure_future(fetcher.fetch(key, url)) for key, url in to_fetch.items()}
        # asyncio.wait rather than a timeout around gather: keys that arrived in time are kept when others do not.
        _, pending = await asyncio.wait(tasks.values(), timeout=self._timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning(
                "prefetch.deadline_exceeded",
                keys=sorted(k for k, t in tasks.items() if t in pending),
                deadline_s=self._timeout,
            )
        failures: dict[str, UnavailableReason] = {}
        for key, task in tasks.items():
            if task in pending:
                failures[key] = UnavailableReason.TIMEOUT
            elif isinstance(error := task.exception(), FetchError):
                failures[key] = error.reason
            elif error is not None:
                raise error
            else:
                fetched: Fetched = task.result()
                values[key] = fetched.value
                issues.extend(PrefetchIssue(key, reason, detail) for reason, detail in fetched.issues)
        return failures


def _is_operation_outcome(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


def _given_value(key: str, value: object, issues: list[PrefetchIssue]) -> object | None:
    """A value the EHR sent: null is no data; an OperationOutcome is recorded and counts as no data."""
    if _is_operation_outcome(value):
        issues.append(PrefetchIssue(key, IssueReason.OPERATION_OUTCOME, "the EHR sent an OperationOutcome"))
        return None
    return value
