"""Clinicians' actions on cards (acknowledge, dismiss, defer, escalate, already addressed), through our own API.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Additive only: one new table. Types are spelled out with plain SQLAlchemy types, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "card_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_uuid", sa.String(36), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        _instant("acted_at"),
        _instant("received_at"),
        sa.Column("user_pseudonym", sa.String(128), nullable=False),
        sa.Column("user_role", sa.String(32), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        _instant("until", nullable=True),
        sa.Column("escalate_to", sa.String(64), nullable=True),
        sa.Column("card_known", sa.Boolean(), nullable=False),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("risk_output_id", sa.Integer(), nullable=True),
        sa.Column("policy_id", sa.String(64), nullable=True),
        sa.Column("policy_version", sa.String(32), nullable=True),
        sa.Column("patient_key", sa.String(128), nullable=True),
        sa.Column("alert_key", sa.String(128), nullable=True),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"], name=op.f("fk_card_actions_decision_id_decisions")),
        sa.ForeignKeyConstraint(
            ["risk_output_id"], ["risk_outputs.id"], name=op.f("fk_card_actions_risk_output_id_risk_outputs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_actions")),
        sa.UniqueConstraint("card_uuid", "action", "acted_at", name=op.f("uq_card_actions_card_uuid_action_acted_at")),
    )
    op.create_index(op.f("ix_card_actions_acted_at"), "card_actions", ["acted_at"])
    op.create_index(op.f("ix_card_actions_decision_id"), "card_actions", ["decision_id"])
    op.create_index("ix_card_actions_patient_alert_acted_at", "card_actions", ["patient_key", "alert_key", "acted_at"])


def downgrade() -> None:
    op.drop_table("card_actions")
