"""Keys, retired secrets, audit events and idempotency records.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("key_name", sa.String(16), nullable=False),
        sa.Column("key_alias", sa.String(256)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("team_id", sa.String(256)),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("spend", sa.Double, nullable=False),
        sa.Column("max_budget", sa.Double),
        sa.Column("soft_budget", sa.Double),
        sa.Column("model_max_budget", sa.JSON, nullable=False),
        sa.Column("budget_duration", sa.String(16)),
        sa.Column("budget_reset_at", sa.DateTime),
        sa.Column("max_parallel_requests", sa.Integer),
        sa.Column("tpm_limit", sa.Integer),
        sa.Column("rpm_limit", sa.Integer),
        sa.Column("model_rpm_limit", sa.JSON, nullable=False),
        sa.Column("model_tpm_limit", sa.JSON, nullable=False),
        sa.Column("allowed_cache_controls", sa.JSON, nullable=False),
        sa.Column("duration", sa.String(16)),
        sa.Column("expires", sa.DateTime),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("permissions", sa.JSON, nullable=False),
        sa.Column("guardrails", sa.JSON, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("budget_id", sa.String(256)),
        sa.Column("enforced_params", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("rotation_count", sa.Integer, nullable=False),
        sa.Column("last_rotated_at", sa.DateTime),
    )
    op.create_index("ix_keys_token", "keys", ["token"], unique=True)
    op.create_index("ix_keys_key_alias", "keys", ["key_alias"])
    op.create_index("ix_keys_user_id", "keys", ["user_id"])
    op.create_index("ix_keys_team_id", "keys", ["team_id"])
    op.create_index("ix_keys_created_at", "keys", ["created_at"])
    op.create_index("ix_keys_budget_reset_at", "keys", ["budget_reset_at"])

    op.create_table(
        "retired_secrets",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column(
            "key_id",
            sa.String(36),
            sa.ForeignKey("keys.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("retired_at", sa.DateTime, nullable=False),
        sa.Column("valid_until", sa.DateTime, nullable=False),
    )
    op.create_index("ix_retired_secrets_key_id", "retired_secrets", ["key_id"])

    op.create_table(
        "audit_events",
        sa.Column("id", _BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_events_key_id", "audit_events", ["key_id"])

    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "ix_idempotency_records_created_at", "idempotency_records", ["created_at"]
    )


def downgrade() -> None:
    op.drop_table("idempotency_records")
    op.drop_table("audit_events")
    op.drop_table("retired_secrets")
    op.drop_table("keys")
