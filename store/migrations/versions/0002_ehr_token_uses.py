"""EHR token uses: the ids of bearer tokens already accepted, so a replayed token is refused in every worker.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Additive only: one new table, nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ehr_token_uses",
        sa.Column("token_key", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_key", name=op.f("pk_ehr_token_uses")),
    )
    # The purge deletes by expiry; without the index it would scan the whole table on every run.
    op.create_index(op.f("ix_ehr_token_uses_expires_at"), "ehr_token_uses", ["expires_at"])


def downgrade() -> None:
    op.drop_table("ehr_token_uses")
