"""The statements of the write transactions, in SQLAlchemy Core.

Each function takes the sync Connection of a transaction run by
Database.transaction. Core rather than the ORM's unit of work: a rotation
writes a few known columns, and profiles showed the ORM's flush (change
tracking, per-object bookkeeping, serialising every JSON column again) costing
more than the statements themselves. The statements are built once; SQLAlchemy
caches their compiled form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from keyserver.errors import Conflict
from keyserver.models import AuditEvent, IdempotencyRecord, KeyRow, RetiredSecret
from keyserver.reads import COLUMN_NAMES, KEY_COLUMNS, KeySnapshot, snapshot

_KEYS = cast(Table, KeyRow.__table__)
_BY_TOKEN = select(*KEY_COLUMNS).where(_KEYS.c.token == bindparam("token"))
_BY_TOKEN_LOCKED = _BY_TOKEN.with_for_update()
_BY_ALIAS = (
    select(*KEY_COLUMNS)
    .where(_KEYS.c.key_alias == bindparam("alias"))
    .with_for_update()
)
_RETIRED = select(RetiredSecret.key_id).where(RetiredSecret.token == bindparam("token"))
# The WHERE binds are named apart from the columns, whose names the SET takes.
_UPDATE = update(_KEYS).where(
    _KEYS.c.id == bindparam("where_id"), _KEYS.c.token == bindparam("where_token")
)
_INSERT_KEY = insert(_KEYS)
_INSERT_RETIRED = insert(cast(Table, RetiredSecret.__table__))
_INSERT_AUDIT = insert(cast(Table, AuditEvent.__table__))
_INSERT_REPLAY = insert(cast(Table, IdempotencyRecord.__table__))


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    return {COLUMN_NAMES[name]: value for name, value in values.items()}


def key_by_token(conn: Connection, token: str, *, lock: bool) -> KeySnapshot | None:
    """The key whose current secret has `token`, locked for the transaction
    when `lock` (FOR UPDATE; SQLite's writes are serial anyway)."""
    query = _BY_TOKEN_LOCKED if lock else _BY_TOKEN
    row = conn.execute(query, {"token": token}).first()
    return None if row is None else snapshot(row)


def keys_by_alias(conn: Connection, alias: str) -> list[KeySnapshot]:
    rows = conn.execute(_BY_ALIAS, {"alias": alias})
    return [snapshot(row) for row in rows]


def retired_owner(conn: Connection, token: str) -> str | None:
    """The id of the key a retired secret belonged to, if `token` is one."""
    return conn.execute(_RETIRED, {"token": token}).scalar()


def secret_in_use(conn: Connection, token: str) -> bool:
    """Whether `token` is the current or a retired secret of any key."""
    return key_by_token(conn, token, lock=False) is not None or (
        retired_owner(conn, token) is not None
    )


def insert_key(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(_INSERT_KEY, _columns(values))


def update_key(
    conn: Connection, key: KeySnapshot, changes: Mapping[str, Any]
) -> KeySnapshot:
    """Write `changes` to `key` if its secret is still the one read; return the
    key as it now is. A concurrent rotation in between raises Conflict."""
    params = _columns(changes)
    params.update(where_id=key.id, where_token=key.token)
    if conn.execute(_UPDATE, params).rowcount != 1:
        raise Conflict("a concurrent change to the same key won; try again")
    return KeySnapshot(**{**vars(key), **changes})


def delete_keys(conn: Connection, ids: list[str]) -> None:
    conn.execute(delete(RetiredSecret).where(RetiredSecret.key_id.in_(ids)))
    conn.execute(delete(KeyRow).where(KeyRow.id.in_(ids)))


def due_for_reset(conn: Connection, now: dt.datetime, limit: int) -> list[KeySnapshot]:
    """Keys whose budget window has ended; rows another replica is resetting
    are skipped rather than waited for."""
    query = (
        select(*KEY_COLUMNS)
        .where(KeyRow.budget_reset_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [snapshot(row) for row in conn.execute(query)]


def retire_secret(
    conn: Connection,
    token: str,
    key_id: str,
    retired_at: dt.datetime,
    valid_until: dt.datetime,
) -> None:
    conn.execute(
        _INSERT_RETIRED,
        {
            "token": token,
            "key_id": key_id,
            "retired_at": retired_at,
            "valid_until": valid_until,
        },
    )


def audit(
    conn: Connection,
    key_id: str,
    action: str,
    actor: str,
    at: dt.datetime,
    details: Mapping[str, Any],
) -> None:
    conn.execute(
        _INSERT_AUDIT,
        {
            "key_id": key_id,
            "action": action,
            "actor": actor,
            "at": at,
            "details": dict(details),
        },
    )


def remember_response(
    conn: Connection,
    record_id: str,
    request_hash: str,
    sealed: bytes,
    created_at: dt.datetime,
) -> None:
    conn.execute(
        _INSERT_REPLAY,
        {
            "id": record_id,
            "request_hash": request_hash,
            "response": sealed,
            "created_at": created_at,
        },
    )
