"""Point lookups for the hot paths: Verify and the authentication of every call.

They skip the ORM session: a lookup by token needs one indexed row, and
building an ORM object (instrumentation, identity map, the session's
begin/rollback) costs more than the query. Rows come back as KeySnapshot, a
plain read-only copy with the attribute names of KeyRow.

On SQLite the lookups run on a read-only connection of their own, in the event
loop's thread, as Prepared statements (see keyserver.statements): a point query
on an index takes microseconds, much less than the hand-off to aiosqlite's
worker thread. WAL mode lets them read while a
write transaction is open on the other connection, and each statement sees
every commit made before it started.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import types
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Dialect, bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keyserver.models import KeyRow, RetiredSecret
from keyserver.statements import Prepared


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


#: The key whose current secret has the token `token`.
KEY_BY_TOKEN = Prepared(select(*KEY_COLUMNS).where(KeyRow.token == bindparam("token")))
_KEY_BY_ID = Prepared(select(*KEY_COLUMNS).where(KeyRow.id == bindparam("key_id")))
_RETIRED = Prepared(
    select(RetiredSecret.key_id, RetiredSecret.valid_until).where(
        RetiredSecret.token == bindparam("token")
    )
)


class SqlAlchemyReads:
    """Lookups through SQLAlchemy Core, outside any ORM session (PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Autocommit: a single SELECT needs no BEGIN, nor a ROLLBACK on return.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def _one(self, statement: Prepared, **params: str) -> Sequence[Any] | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(statement.statement, params)).first()

    async def key_by_token(self, token: str) -> KeySnapshot | None:
        return _snapshot(await self._one(KEY_BY_TOKEN, token=token))

    async def key_by_id(self, key_id: str) -> KeySnapshot | None:
        return _snapshot(await self._one(_KEY_BY_ID, key_id=key_id))

    async def retired(self, token: str) -> tuple[str, dt.datetime] | None:
        row = await self._one(_RETIRED, token=token)
        return None if row is None else (row[0], row[1])

    def close(self) -> None:
        pass


class SqliteReads:
    """Lookups on a read-only sqlite3 connection, in the caller's thread."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._conn = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,  # autocommit: every query sees the newest commit
            check_same_thread=False,
        )
        self._conn.execute("PRAGMA busy_timeout=1000")
        self._dialect = dialect

    def _one(self, statement: Prepared, **params: str) -> list[Any] | None:
        return statement.first_sqlite(self._conn, self._dialect, params)

    async def key_by_token(self, token: str) -> KeySnapshot | None:
        return _snapshot(self._one(KEY_BY_TOKEN, token=token))

    async def key_by_id(self, key_id: str) -> KeySnapshot | None:
        return _snapshot(self._one(_KEY_BY_ID, key_id=key_id))

    async def retired(self, token: str) -> tuple[str, dt.datetime] | None:
        row = self._one(_RETIRED, token=token)
        return None if row is None else (row[0], row[1])

    def close(self) -> None:
        self._conn.close()


def snapshot(row: Sequence[Any]) -> KeySnapshot:
    """A snapshot of a row selected with KEY_COLUMNS."""
    return KeySnapshot(**dict(zip(_ATTRIBUTES, row, strict=True)))


def _snapshot(row: Sequence[Any] | None) -> KeySnapshot | None:
    return None if row is None else snapshot(row)


def create_reads(engine: AsyncEngine) -> KeyReads:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        assert database, "an SQLite engine needs a file"
        return SqliteReads(database, engine.dialect)
    return SqlAlchemyReads(engine)
