"""Live candidates with their stage history, and the decisions shadow and canary candidates took on live calls.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Additive only: three new tables. Types are spelled out with plain SQLAlchemy types, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("bucket_by", sa.String(16), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        _instant("created_at"),
        _instant("changed_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidates")),
    )
    op.create_index(op.f("ix_candidates_service_id"), "candidates", ["service_id"])

    op.create_table(
        "candidate_stage_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(16), nullable=True),
        sa.Column("to_stage", sa.String(16), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        _instant("at"),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"], name=op.f("fk_candidate_stage_changes_candidate_id_candidates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate_stage_changes")),
    )
    op.create_index(op.f("ix_candidate_stage_changes_candidate_id"), "candidate_stage_changes", ["candidate_id"])

    op.create_table(
        "shadow_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("served", sa.Boolean(), nullable=False),
        sa.Column("bucket", sa.Float(), nullable=True),
        sa.Column("scorer_id", sa.String(64), nullable=False),
        sa.Column("band", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reasons", _JSON, nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(32), nullable=False),
        sa.Column("live_action", sa.String(16), nullable=True),
        sa.Column("live_reasons", _JSON, nullable=True),
        sa.Column("live_route", sa.String(64), nullable=True),
        _instant("decided_at"),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"], name=op.f("fk_shadow_decisions_candidate_id_candidates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_decisions")),
    )
    op.create_index("ix_shadow_decisions_candidate_id_id", "shadow_decisions", ["candidate_id", "id"])
    op.create_index(op.f("ix_shadow_decisions_hook_instance"), "shadow_decisions", ["hook_instance"])


def downgrade() -> None:
    op.drop_table("shadow_decisions")
    op.drop_table("candidate_stage_changes")
    op.drop_table("candidates")
