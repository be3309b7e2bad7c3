"""Initial schema: hook calls, risk outputs, decisions, cards, feedback, policy versions, shadow results, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Hand-reviewed from autogenerate. Types are spelled out with plain SQLAlchemy types rather than the application's
TypeDecorators, so this revision keeps meaning the same thing when application code changes later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "hook_calls",
        _id(),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("patient_key", sa.String(128), nullable=True),
        sa.Column("encounter_id", sa.String(128), nullable=True),
        sa.Column("response", _JSON, nullable=False),
        _instant("received_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_calls")),
        sa.UniqueConstraint("hook_instance", name=op.f("uq_hook_calls_hook_instance")),
    )

    op.create_table(
        "risk_outputs",
        _id(),
        sa.Column("hook_instance", sa.String(128), nullable=True),
        sa.Column("scorer_id", sa.String(64), nullable=False),
        sa.Column("scorer_version", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("band", sa.String(32), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("missing", _JSON, nullable=False),
        sa.Column("explanation", _JSON, nullable=False),
        sa.Column("features", _JSON, nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        _instant("as_of"),
        sa.Column("patient_key", sa.String(128), nullable=True),
        sa.Column("encounter_id", sa.String(128), nullable=True),
        _instant("recorded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_outputs")),
    )
    op.create_index(op.f("ix_risk_outputs_hook_instance"), "risk_outputs", ["hook_instance"])
    op.create_index("ix_risk_outputs_patient_scorer_as_of", "risk_outputs", ["patient_key", "scorer_id", "as_of"])

    op.create_table(
        "decisions",
        _id(),
        sa.Column("risk_output_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reasons", _JSON, nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(32), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        _instant("decided_at"),
        _instant("delay_until", nullable=True),
        sa.ForeignKeyConstraint(
            ["risk_output_id"], ["risk_outputs.id"], name=op.f("fk_decisions_risk_output_id_risk_outputs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(op.f("ix_decisions_risk_output_id"), "decisions", ["risk_output_id"])

    op.create_table(
        "cards",
        _id(),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("body", _JSON, nullable=False),
        _instant("created_at"),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"], name=op.f("fk_cards_decision_id_decisions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
        sa.UniqueConstraint("uuid", name=op.f("uq_cards_uuid")),
    )
    op.create_index(op.f("ix_cards_decision_id"), "cards", ["decision_id"])
    op.create_index(op.f("ix_cards_hook_instance"), "cards", ["hook_instance"])

    op.create_table(
        "feedback",
        _id(),
        sa.Column("card_uuid", sa.String(36), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        _instant("outcome_at"),
        sa.Column("accepted_suggestions", _JSON, nullable=False),
        sa.Column("override_reason", _JSON, nullable=True),
        sa.Column("user_pseudonym", sa.String(128), nullable=True),
        _instant("received_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint(
            "card_uuid", "outcome", "outcome_at", name=op.f("uq_feedback_card_uuid_outcome_outcome_at")
        ),
    )

    op.create_table(
        "policy_versions",
        _id(),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        _instant("created_at"),
        sa.Column("active", sa.Boolean(), nullable=False),
        _instant("activated_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint("policy_id", "version", name=op.f("uq_policy_versions_policy_id_version")),
    )
    op.create_index(
        "uq_policy_versions_one_active",
        "policy_versions",
        ["policy_id"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "shadow_results",
        _id(),
        sa.Column("candidate_id", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("risk_output_id", sa.Integer(), nullable=False),
        sa.Column("would_be_decision", _JSON, nullable=False),
        _instant("recorded_at"),
        sa.ForeignKeyConstraint(
            ["risk_output_id"], ["risk_outputs.id"], name=op.f("fk_shadow_results_risk_output_id_risk_outputs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_results")),
    )
    op.create_index(op.f("ix_shadow_results_candidate_id"), "shadow_results", ["candidate_id"])
    op.create_index(op.f("ix_shadow_results_risk_output_id"), "shadow_results", ["risk_output_id"])

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _instant("at"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_hash"), "audit_log", ["hash"])


def downgrade() -> None:
    # Children before parents, so foreign keys never dangle mid-way.
    for table in (
        "audit_log",
        "shadow_results",
        "policy_versions",
        "feedback",
        "cards",
        "decisions",
        "risk_outputs",
        "hook_calls",
    ):
        op.drop_table(table)
