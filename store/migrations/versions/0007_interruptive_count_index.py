"""The unit's interruptive-card count is answered from an index alone.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

The count of interruptive cards in a unit since the shift began filtered on `interruptive` after the index on
(unit_id, kind, at) had found the rows, so every hook call read each counted row from the table: 370 µs for a
thousand cards on SQLite, growing with the shift. With `interruptive` in the index before `at`, the count is one
range of index entries. The old index served only that count, so it is replaced.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_policy_events_unit_kind_interruptive_at", "policy_events", ["unit_id", "kind", "interruptive", "at"]
    )
    op.drop_index("ix_policy_events_unit_kind_at", table_name="policy_events")


def downgrade() -> None:
    op.create_index("ix_policy_events_unit_kind_at", "policy_events", ["unit_id", "kind", "at"])
    op.drop_index("ix_policy_events_unit_kind_interruptive_at", table_name="policy_events")
