"""Timers and outbox: durable delay/escalation timers and the transactional outbox of outbound messages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Additive only: two new tables, nothing existing changes. Types are spelled out with plain SQLAlchemy types, as in
0001, so this revision keeps meaning the same thing when application code changes later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _lease() -> list[sa.Column[object]]:
    return [
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.String(128), nullable=True),
        _instant("locked_until", nullable=True),
        sa.Column("last_error", sa.String(256), nullable=True),
        _instant("created_at"),
    ]


def upgrade() -> None:
    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        _instant("due_at"),
        sa.Column("payload", _JSON, nullable=False),
        *_lease(),
        _instant("fired_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
        sa.UniqueConstraint("key", name=op.f("uq_timers_key")),
    )
    # Workers poll for pending timers in due order; the index keeps that poll cheap on a large table.
    op.create_index("ix_timers_state_due_at", "timers", ["state", "due_at"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(256), nullable=False),
        _instant("next_attempt_at"),
        *_lease(),
        _instant("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("timers")
