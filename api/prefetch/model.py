"""What prefetch resolution hands back: the values per key, the issues met on the way, and the two refusals the
route maps to HTTP (400 for a malformed request, 412 for data that is required but cannot be obtained)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class IssueReason(StrEnum):
    """Why a prefetch key did not simply yield the data: always a value, never only a log line."""

    OPERATION_OUTCOME = "operation-outcome"  # the EHR sent an OperationOutcome instead of data
    TEMPLATE_UNFULFILLABLE = "template-unfulfillable"  # a token has no value for this call
    NOT_FOUND = "not-found"  # a read answered 404/410: no such resource, so no data
    UNREQUESTED_KEY = "unrequested-key"  # the EHR sent a key the service did not ask for; ignored
    PAGE_LIMIT = "page-limit"  # paging stopped at the page limit; the data is partial
    ENTRY_LIMIT = "entry-limit"  # entries cut at the entry limit; the data is partial
    FOREIGN_NEXT_LINK = "foreign-next-link"  # a next link left the FHIR server's origin and was not followed
    UNAVAILABLE = "unavailable"  # the key could not be obtained; see the UnavailableReason in the detail


class UnavailableReason(StrEnum):
    """Why a key that had to be fetched could not be."""

    NO_FHIR_SERVER = "no-fhir-server"
    NO_ACCESS_TOKEN = "no-access-token"  # noqa: S105 -- a reason code, not a secret
    UNREACHABLE = "fhir-server-unreachable"
    TIMEOUT = "fhir-server-timeout"
    DENIED = "fhir-server-denied"  # 401 or 403: the token does not grant this read
    SERVER_ERROR = "fhir-server-error"  # 5xx or another status we cannot use
    INVALID_RESPONSE = "invalid-response"  # not JSON, not the expected resource shape, too large, or a redirect
    MIXED = "several-reasons"  # keys failed for different reasons; each issue names its own


@dataclass(frozen=True, slots=True)
class PrefetchIssue:
    """One thing worth knowing about a key. `detail` carries no PHI: no ids, no URLs, no bodies."""

    key: str
    reason: IssueReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ResolvedPrefetch:
    """The prefetch the pipeline reads: one value per template key (None means no data), the keys that were
    fetched from the FHIR server rather than sent by the EHR, and the issues met."""

    values: dict[str, object | None]
    fetched: list[str] = field(default_factory=list)
    issues: list[PrefetchIssue] = field(default_factory=list)


class PrefetchRequestError(ValueError):
    """The request's fhirServer/fhirAuthorization/prefetch members are malformed or not allowed: answer 400."""


class PrefetchUnavailable(Exception):  # noqa: N818 -- named after the 412 it stands for, as the route reads it
    """Required prefetch keys can neither come from the request nor be fetched: answer 412 Precondition Failed."""

    def __init__(self, keys: Iterable[str], reason: UnavailableReason, issues: Iterable[PrefetchIssue] = ()) -> None:
        self.keys = tuple(sorted(keys))
        self.reason = reason
        self.issues = tuple(issues)
        super().__init__(f"required prefetch data could not be obtained ({reason}): {', '.join(self.keys)}")


def summarise(reasons: Iterable[UnavailableReason]) -> UnavailableReason:
    """One reason for a set of failed keys: theirs if they agree, MIXED otherwise."""
    distinct = set(reasons)
    return distinct.pop() if len(distinct) == 1 else UnavailableReason.MIXED
