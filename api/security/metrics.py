"""Prometheus counters of EHR authentication, labelled by reason code only (never by token, issuer or path)."""

from __future__ import annotations

from prometheus_client import Counter

EHR_AUTH_REJECTED = Counter(
    "cds_ehr_auth_rejected_total",
    "Calls refused with 401 because the EHR's bearer token was missing or not accepted, by reason.",
    ["reason"],
)
EHR_AUTH_ACCEPTED = Counter(
    "cds_ehr_auth_accepted_total",
    "Calls whose EHR bearer token was verified.",
)
