"""Documents are stored as JSON text on PostgreSQL, as on SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Every document column (risk outputs' inputs and explanations, decisions' reasons and traces, cards, policy events,
audit payloads, ...) was JSONB on PostgreSQL. The store writes each document once and reads it back whole; no
statement looks inside one, and no index is built on one. JSONB made the server parse every document into its binary
form on the way in and print it again on the way out: in alternating runs of the hook benchmark the server spent
1.20-1.34 ms of CPU a hook call with JSONB and 1.01-1.13 ms with JSON (5 of 5 pairs). JSON keeps the text as written
(the order of keys included) and still answers the -> and ->> operators of an ad hoc query.

On PostgreSQL each column is converted in place, which rewrites its table under an exclusive lock: on a store that
already holds months of calls, run it in a maintenance window. Measured on a 2-core machine: 3.0 s for a store of
12,000 hook calls (240 MB), so about 4 minutes a million calls. SQLite stores JSON as text already: nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "audit_log": ("payload",),
    "cards": ("body",),
    "decisions": ("reasons", "trace", "escalation"),
    "feedback": ("accepted_suggestions", "override_reason"),
    "hook_calls": ("response",),
    "outbox": ("payload",),
    "policy_events": ("payload",),
    "risk_outputs": ("missing", "explanation", "features"),
    "shadow_decisions": ("reasons", "live_reasons"),
    "shadow_results": ("would_be_decision",),
    "timers": ("payload",),
}


def _convert(to: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in DOCUMENT_COLUMNS.items():
        # One statement a table: PostgreSQL rewrites the table once for all of its columns.
        changes = ", ".join(f'ALTER COLUMN "{column}" TYPE {to} USING "{column}"::{to}' for column in columns)
        op.execute(f'ALTER TABLE "{table}" {changes}')


def upgrade() -> None:
    _convert("json")


def downgrade() -> None:
    _convert("jsonb")
