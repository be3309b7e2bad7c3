"""Schemas of the admin API, named by role: `*Create` and `*Validate` come in, `*Read` goes out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas import ErrorDetailRead
from policy.silences import SilenceRecord, SilenceStatus
from policy.versions import PolicyDiff, StoredVersion

# A policy document is a few kilobytes; the bound keeps YAML parsing of a hostile body cheap.
MAX_POLICY_CHARS = 256 * 1024
MAX_COMMENT_CHARS = 2000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyValidate(_In):
    text: str = Field(max_length=MAX_POLICY_CHARS, description="The policy document as YAML.")


class PolicyVersionCreate(_In):
    text: str = Field(max_length=MAX_POLICY_CHARS, description="The policy document as YAML.")
    comment: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS, description="Why this version exists.")


class PolicyValidationRead(BaseModel):
    valid: bool
    # Every error at once, each with the path to the offending field ("routes[0].match.band: ...").
    errors: list[str]
    policy_id: str | None = None
    version: str | None = None
    content_hash: str | None = None


class PolicyRefusedRead(BaseModel):
    """A policy document refused: the usual error, and every validation error with its path."""

    error: ErrorDetailRead
    # Empty when the body could not be read as a document at all.
    errors: list[str] = []


class PolicyRead(BaseModel):
    policy_id: str
    live_version: str | None = Field(description="What the hook path decides with now (version+content hash).")
    source: str = Field(description="`stored` when an activated stored version is live, else `bundled`.")
    active_version: str | None
    stored_versions: int


class PolicyVersionSummaryRead(BaseModel):
    policy_id: str
    version: str
    content_hash: str
    author: str
    comment: str
    created_at: datetime
    active: bool
    activated_at: datetime | None

    @classmethod
    def of(cls, stored: StoredVersion) -> PolicyVersionSummaryRead:
        v = stored.version
        return cls(
            policy_id=v.policy_id,
            version=v.version,
            content_hash=v.content_hash,
            author=v.author,
            comment=v.comment,
            created_at=v.created_at,
            active=stored.active,
            activated_at=stored.activated_at,
        )


class PolicyVersionRead(PolicyVersionSummaryRead):
    text: str

    @classmethod
    def of(cls, stored: StoredVersion) -> PolicyVersionRead:
        return cls(**PolicyVersionSummaryRead.of(stored).model_dump(), text=stored.version.text)


class PolicyActivationRead(BaseModel):
    policy_id: str
    version: str
    activated_at: datetime | None
    previous_version: str | None


class PolicyDiffRead(BaseModel):
    policy_id: str
    from_version: str
    to_version: str
    unified: str
    changed_fields: list[str]
    routes_added: list[str]
    routes_removed: list[str]
    routes_changed: list[str]

    @classmethod
    def of(cls, policy_id: str, old: str, new: str, diff: PolicyDiff) -> PolicyDiffRead:
        return cls(
            policy_id=policy_id,
            from_version=old,
            to_version=new,
            unified=diff.unified,
            changed_fields=list(diff.changed_fields),
            routes_added=list(diff.routes_added),
            routes_removed=list(diff.routes_removed),
            routes_changed=list(diff.routes_changed),
        )


class SilenceCreate(_In):
    match: dict[str, Any] = Field(
        default_factory=dict, description="Matchers as in a policy route's `match`, e.g. {scorer: news2, band: high}."
    )
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    ends_at: AwareDatetime
    comment: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS)
    patient_key: str | None = Field(default=None, max_length=128, description="A pseudonymous patient key.")
    unit_id: str | None = Field(default=None, max_length=128)


class SilenceRead(BaseModel):
    silence_id: str
    status: SilenceStatus
    match: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str
    created_at: datetime
    patient_key: str | None
    unit_id: str | None
    expired_at: datetime | None

    @classmethod
    def of(cls, record: SilenceRecord, now: datetime) -> SilenceRead:
        s = record.silence
        return cls(
            silence_id=s.silence_id,
            status=record.status(now),
            match=s.match.model_dump(mode="json", by_alias=True, exclude_none=True),
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            author=s.author,
            comment=s.comment,
            created_at=s.created_at,
            patient_key=s.patient,
            unit_id=s.unit_id,
            expired_at=record.expired_at,
        )
