"""The tables of the key service (SQLAlchemy 2 typed ORM).

All datetimes are naive UTC: SQLite has no time zones, and one convention for
both backends keeps comparisons with the clock simple.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT.
_BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class KeyRow(Base):
    """A virtual key and its settings. `id` is stable; `token` is the current
    secret's keyed hash and changes on every rotation."""

    __tablename__ = "keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Unique index: Verify and every authenticated call look keys up by token.
    token: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    key_name: Mapped[str] = mapped_column(String(16))
    key_alias: Mapped[str | None] = mapped_column(String(256), index=True)
    user_id: Mapped[str | None] = mapped_column(String(256), index=True)
    team_id: Mapped[str | None] = mapped_column(String(256), index=True)
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    spend: Mapped[float] = mapped_column(Double, default=0.0)
    max_budget: Mapped[float | None] = mapped_column(Double)
    soft_budget: Mapped[float | None] = mapped_column(Double)
    model_max_budget: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    budget_duration: Mapped[str | None] = mapped_column(String(16))
    # Indexed: housekeeping finds the keys whose spend is due to reset.
    budget_reset_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    max_parallel_requests: Mapped[int | None] = mapped_column(Integer)
    tpm_limit: Mapped[int | None] = mapped_column(Integer)
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    model_rpm_limit: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_tpm_limit: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    allowed_cache_controls: Mapped[list[str]] = mapped_column(JSON, default=list)
    duration: Mapped[str | None] = mapped_column(String(16))
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    permissions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    guardrails: Mapped[list[str]] = mapped_column(JSON, default=list)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    budget_id: Mapped[str | None] = mapped_column(String(256))
    enforced_params: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    rotation_count: Mapped[int] = mapped_column(Integer, default=0)
    last_rotated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    def __repr__(self) -> str:
        return f"KeyRow(id={self.id!r}, key_name={self.key_name!r})"


class RetiredSecret(Base):
    """A secret replaced by a rotation. It keeps authenticating until
    `valid_until` (the end of its grace period; the rotation time when there
    was none), and is remembered after that so a stale secret is told apart
    from an unknown one."""

    __tablename__ = "retired_secrets"
    # A rotation ends the grace periods that outlast its own: by key, only the
    # secrets still in one (see migration 0002).
    __table_args__ = (
        Index("ix_retired_secrets_key_id_valid_until", "key_id", "valid_until"),
    )

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("keys.id", ondelete="CASCADE")
    )
    retired_at: Mapped[dt.datetime] = mapped_column(DateTime)
    valid_until: Mapped[dt.datetime] = mapped_column(DateTime)


class AuditEvent(Base):
    """One change to a key. Kept after the key is deleted, so no foreign key."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(32))
    #: "master" or the stable id of the key that made the call; never a secret.
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IdempotencyRecord(Base):
    """The sealed response of an idempotent call, replayed on a retry.

    `id` and `request_hash` are keyed hashes, and `response` is encrypted with
    a key derived from the idempotency key itself, which is never stored: a copy
    of the database alone cannot recover the secret inside the response."""

    __tablename__ = "idempotency_records"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
