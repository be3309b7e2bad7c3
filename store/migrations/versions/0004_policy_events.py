"""Policy events: the durable log the routed policy's state is read from, and each decision's trace.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Additive only: one new table and two nullable columns on `decisions` (rows decided before this revision keep no
trace). Types are spelled out with plain SQLAlchemy types, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add columns with every constraint in place; on PostgreSQL it is plain ALTER.
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("trace", _JSON, nullable=True))
        batch.add_column(sa.Column("escalation", _JSON, nullable=True))

    op.create_table(
        "policy_events",
        sa.Column("id", sa.Integer(), nullable=False),
        _instant("at"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("patient_key", sa.String(128), nullable=True),
        sa.Column("alert_key", sa.String(128), nullable=True),
        sa.Column("unit_id", sa.String(128), nullable=True),
        _instant("until", nullable=True),
        sa.Column("interruptive", sa.Boolean(), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"], name=op.f("fk_policy_events_decision_id_decisions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_events")),
    )
    op.create_index("ix_policy_events_patient_alert_kind", "policy_events", ["patient_key", "alert_key", "kind", "id"])
    op.create_index("ix_policy_events_patient_kind_at", "policy_events", ["patient_key", "kind", "at"])
    op.create_index("ix_policy_events_unit_kind_at", "policy_events", ["unit_id", "kind", "at"])
    op.create_index("ix_policy_events_kind_until", "policy_events", ["kind", "until"])
    op.create_index(op.f("ix_policy_events_decision_id"), "policy_events", ["decision_id"])


def downgrade() -> None:
    op.drop_table("policy_events")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("escalation")
        batch.drop_column("trace")
