"""Point lookups for the hot paths: Verify and the authentication of every call.

They skip the ORM session: a lookup by token needs one indexed row, and
building an ORM object (instrumentation, identity map, the session's
begin/rollback) costs more than the query. Rows come back as KeySnapshot, a
plain read-only copy with the attribute names of KeyRow.

On SQLite the lookups run on a read-only connection of their own, in the event
loop's thread: a point query on an index takes microseconds, much less than
the hand-off to aiosqlite's worker thread. WAL mode lets them read while a
write transaction is open on the other connection, and each statement sees
every commit made before it started.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import types
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import DateTime, bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import JSON, Boolean

from keyserver.models import KeyRow, RetiredSecret


class KeySnapshot(types.SimpleNamespace):
    """A read-only copy of a `keys` row, with the attribute names of KeyRow."""

    def __repr__(self) -> str:
        return f"KeySnapshot(id={self.id!r}, key_name={self.key_name!r})"


#: A key as the read paths see it: an ORM row, or a snapshot of one.
KeyView = KeyRow | KeySnapshot


class KeyReads(Protocol):
    async def key_by_token(self, token: str) -> KeySnapshot | None: ...

    async def key_by_id(self, key_id: str) -> KeySnapshot | None: ...

    async def retired(self, token: str) -> tuple[str, dt.datetime] | None:
        """The key id and the end of the grace period of a retired secret."""
        ...

    def close(self) -> None: ...


# (attribute name on KeyRow, column) in table order.
_KEY_COLUMNS = [(attr.key, attr.columns[0]) for attr in inspect(KeyRow).column_attrs]
_ATTRIBUTES = [name for name, _ in _KEY_COLUMNS]
#: Every column of `keys`, in the order `snapshot` expects.
KEY_COLUMNS = [column for _, column in _KEY_COLUMNS]
#: The column name of each KeyRow attribute (they differ for `metadata`).
COLUMN_NAMES = {name: column.name for name, column in _KEY_COLUMNS}


class SqlAlchemyReads:
    """Lookups through SQLAlchemy Core, outside any ORM session (PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Autocommit: a single SELECT needs no BEGIN, nor a ROLLBACK on return.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        columns = KEY_COLUMNS
        self._by_token = select(*columns).where(KeyRow.token == bindparam("token"))
        self._by_id = select(*columns).where(KeyRow.id == bindparam("key_id"))
        self._retired = select(RetiredSecret.key_id, RetiredSecret.valid_until).where(
            RetiredSecret.token == bindparam("token")
        )

    async def _one(self, statement: Any, **params: str) -> Sequence[Any] | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(statement, params)).first()

    async def key_by_token(self, token: str) -> KeySnapshot | None:
        return _snapshot(await self._one(self._by_token, token=token))

    async def key_by_id(self, key_id: str) -> KeySnapshot | None:
        return _snapshot(await self._one(self._by_id, key_id=key_id))

    async def retired(self, token: str) -> tuple[str, dt.datetime] | None:
        row = await self._one(self._retired, token=token)
        return None if row is None else (row[0], row[1])

    def close(self) -> None:
        pass


class SqliteReads:
    """Lookups on a read-only sqlite3 connection, in the caller's thread."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,  # autocommit: every query sees the newest commit
            check_same_thread=False,
        )
        self._conn.execute("PRAGMA busy_timeout=1000")
        columns = ", ".join(f'"{c.name}"' for _, c in _KEY_COLUMNS)
        self._by_token = f"SELECT {columns} FROM keys WHERE token = ?"
        self._by_id = f"SELECT {columns} FROM keys WHERE id = ?"
        # (position, converter) of the columns SQLite stores as text or int.
        self._converters = [
            (index, convert)
            for index, (_, column) in enumerate(_KEY_COLUMNS)
            if (convert := _sqlite_converter(column.type)) is not None
        ]

    def _key(self, sql: str, value: str) -> KeySnapshot | None:
        row = self._conn.execute(sql, (value,)).fetchone()
        if row is None:
            return None
        values = list(row)
        for index, convert in self._converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        return KeySnapshot(**dict(zip(_ATTRIBUTES, values, strict=True)))

    async def key_by_token(self, token: str) -> KeySnapshot | None:
        return self._key(self._by_token, token)

    async def key_by_id(self, key_id: str) -> KeySnapshot | None:
        return self._key(self._by_id, key_id)

    async def retired(self, token: str) -> tuple[str, dt.datetime] | None:
        row = self._conn.execute(
            "SELECT key_id, valid_until FROM retired_secrets WHERE token = ?",
            (token,),
        ).fetchone()
        return None if row is None else (row[0], dt.datetime.fromisoformat(row[1]))

    def close(self) -> None:
        self._conn.close()


def snapshot(row: Sequence[Any]) -> KeySnapshot:
    """A snapshot of a row selected with KEY_COLUMNS."""
    return KeySnapshot(**dict(zip(_ATTRIBUTES, row, strict=True)))


def _snapshot(row: Sequence[Any] | None) -> KeySnapshot | None:
    return None if row is None else snapshot(row)


_EMPTY_JSON: dict[str, Callable[[], Any]] = {"[]": list, "{}": dict}


def _json(text: str) -> Any:
    # Most JSON columns hold an empty list or object; skip the parser for them.
    empty = _EMPTY_JSON.get(text)
    return empty() if empty is not None else json.loads(text)


def _sqlite_converter(column_type: Any) -> Callable[[Any], Any] | None:
    """How to read back a type that SQLAlchemy's SQLite dialect stores as text
    (JSON, DateTime) or as an integer (Boolean); None for the rest."""
    if isinstance(column_type, JSON):
        return _json
    if isinstance(column_type, DateTime):
        return dt.datetime.fromisoformat
    if isinstance(column_type, Boolean):
        return bool
    return None


def create_reads(engine: AsyncEngine) -> KeyReads:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        assert database, "an SQLite engine needs a file"
        return SqliteReads(database)
    return SqlAlchemyReads(engine)
