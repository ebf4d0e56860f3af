"""The statements of the write transactions, in SQLAlchemy Core.

Each function takes the Tx of a transaction run by Database.transaction. Core
rather than the ORM's unit of work: a rotation writes a few known columns, and
profiles showed the ORM's flush (change tracking, per-object bookkeeping,
serialising every JSON column again) costing more than the statements
themselves. The statements of every call are built once and Prepared (see
keyserver.statements); the rare ones are built when needed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update

from keyserver.errors import Conflict
from keyserver.models import AuditEvent, IdempotencyRecord, KeyRow, RetiredSecret
from keyserver.reads import (
    COLUMN_NAMES,
    KEY_BY_TOKEN,
    KEY_COLUMNS,
    KeySnapshot,
    snapshot,
)
from keyserver.statements import Prepared, Tx

_KEYS = cast(Table, KeyRow.__table__)
_BY_TOKEN_LOCKED = Prepared(
    select(*KEY_COLUMNS).where(_KEYS.c.token == bindparam("token")).with_for_update()
)
_BY_ALIAS = Prepared(
    select(*KEY_COLUMNS)
    .where(_KEYS.c.key_alias == bindparam("alias"))
    .with_for_update()
)
_RETIRED = Prepared(
    select(RetiredSecret.key_id).where(RetiredSecret.token == bindparam("token"))
)
# The WHERE binds are named apart from the columns, whose names the SET takes.
_UPDATE = Prepared(
    update(_KEYS).where(
        _KEYS.c.id == bindparam("where_id"), _KEYS.c.token == bindparam("where_token")
    )
)
_RETIRED_TABLE = cast(Table, RetiredSecret.__table__)
_END_GRACE = Prepared(
    update(_RETIRED_TABLE)
    .where(
        _RETIRED_TABLE.c.key_id == bindparam("of_key"),
        _RETIRED_TABLE.c.valid_until > bindparam("until"),
    )
    .values(valid_until=bindparam("until"))
)
_INSERT_KEY = Prepared(insert(_KEYS))
_INSERT_RETIRED = Prepared(insert(_RETIRED_TABLE))
_INSERT_AUDIT = Prepared(insert(cast(Table, AuditEvent.__table__)))
_REPLAYS = cast(Table, IdempotencyRecord.__table__)
_INSERT_REPLAY = Prepared(insert(_REPLAYS))
_FORGET_REPLAY = Prepared(
    delete(_REPLAYS).where(
        _REPLAYS.c.id == bindparam("record_id"),
        _REPLAYS.c.created_at <= bindparam("cutoff"),
    )
)


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    return {COLUMN_NAMES[name]: value for name, value in values.items()}


def key_by_token(tx: Tx, token: str, *, lock: bool) -> KeySnapshot | None:
    """The key whose current secret has `token`, locked for the transaction
    when `lock` (FOR UPDATE; a SQLite transaction holds the write lock)."""
    row = tx.first(_BY_TOKEN_LOCKED if lock else KEY_BY_TOKEN, {"token": token})
    return None if row is None else snapshot(row)


def keys_by_alias(tx: Tx, alias: str) -> list[KeySnapshot]:
    return [snapshot(row) for row in tx.rows(_BY_ALIAS, {"alias": alias})]


def retired_owner(tx: Tx, token: str) -> str | None:
    """The id of the key a retired secret belonged to, if `token` is one."""
    owner: str | None = tx.scalar(_RETIRED, {"token": token})
    return owner


def secret_in_use(tx: Tx, token: str) -> bool:
    """Whether `token` is the current or a retired secret of any key."""
    return key_by_token(tx, token, lock=False) is not None or (
        retired_owner(tx, token) is not None
    )


def insert_key(tx: Tx, values: Mapping[str, Any]) -> None:
    tx.execute(_INSERT_KEY, _columns(values))


def update_key(tx: Tx, key: KeySnapshot, changes: Mapping[str, Any]) -> KeySnapshot:
    """Write `changes` to `key` if its secret is still the one read; return the
    key as it now is. A concurrent rotation in between raises Conflict."""
    params = _columns(changes)
    params.update(where_id=key.id, where_token=key.token)
    if tx.execute(_UPDATE, params) != 1:
        raise Conflict("a concurrent change to the same key won; try again")
    return KeySnapshot(**{**vars(key), **changes})


def delete_keys(tx: Tx, ids: list[str]) -> None:
    tx.execute(delete(RetiredSecret).where(RetiredSecret.key_id.in_(ids)))
    tx.execute(delete(KeyRow).where(KeyRow.id.in_(ids)))


def due_for_reset(tx: Tx, now: dt.datetime, limit: int) -> list[KeySnapshot]:
    """Keys whose budget window has ended; rows another replica is resetting
    are skipped rather than waited for."""
    query = (
        select(*KEY_COLUMNS)
        .where(KeyRow.budget_reset_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [snapshot(row) for row in tx.rows(query)]


def end_grace_periods(tx: Tx, key_id: str, until: dt.datetime) -> None:
    """Make every retired secret of the key stop working by `until` at latest."""
    tx.execute(_END_GRACE, {"of_key": key_id, "until": until})


def retire_secret(
    tx: Tx,
    token: str,
    key_id: str,
    retired_at: dt.datetime,
    valid_until: dt.datetime,
) -> None:
    tx.execute(
        _INSERT_RETIRED,
        {
            "token": token,
            "key_id": key_id,
            "retired_at": retired_at,
            "valid_until": valid_until,
        },
    )


def audit(
    tx: Tx,
    key_id: str,
    action: str,
    actor: str,
    at: dt.datetime,
    details: Mapping[str, Any],
) -> None:
    tx.execute(
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
    tx: Tx,
    record_id: str,
    request_hash: str,
    sealed: bytes,
    created_at: dt.datetime,
    *,
    stale_before: dt.datetime,
) -> None:
    """Store a sealed response, replacing one of the same id that has outlived
    the idempotency window but not yet met the sweep (once a minute)."""
    tx.execute(_FORGET_REPLAY, {"record_id": record_id, "cutoff": stale_before})
    tx.execute(
        _INSERT_REPLAY,
        {
            "id": record_id,
            "request_hash": request_hash,
            "response": sealed,
            "created_at": created_at,
        },
    )
