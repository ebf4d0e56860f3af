"""Index retired secrets by key and end of grace period.

Every rotation ends the grace periods of the key's earlier secrets that last
longer than its own (UPDATE ... WHERE key_id = ? AND valid_until > ?). Indexed
by key alone, that visited every secret the key ever had, so a key rotated
often made each rotation slower; with valid_until in the index it visits only
the secrets still in a grace period, and lookups by key alone still use it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_retired_secrets_key_id_valid_until",
        "retired_secrets",
        ["key_id", "valid_until"],
    )
    op.drop_index("ix_retired_secrets_key_id", table_name="retired_secrets")


def downgrade() -> None:
    op.create_index("ix_retired_secrets_key_id", "retired_secrets", ["key_id"])
    op.drop_index("ix_retired_secrets_key_id_valid_until", table_name="retired_secrets")
