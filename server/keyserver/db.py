"""Engines, sessions and migrations for SQLite (aiosqlite) and PostgreSQL
(asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from keyserver.reads import KeyReads, create_reads

_MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every replica.
_MIGRATION_LOCK_ID = 0x6B657973


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create an engine; SQLite gets WAL and a busy timeout on every connection.

    A PostgreSQL URL may end in `?schema=NAME` to keep the tables in that schema
    (it must exist), so several deployments or test runs can share a database.
    """
    if is_sqlite(url):
        pathlib.Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    parsed = make_url(url)
    schema = parsed.query.get("schema")
    if isinstance(schema, str) and parsed.get_backend_name() == "postgresql":
        parsed = parsed.difference_update_query(["schema"])
        kwargs.setdefault("connect_args", {}).setdefault(
            "server_settings", {"search_path": schema}
        )
    engine = create_async_engine(parsed, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets readers (Verify) run while a rotation writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (creating it from empty)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together must not run the same migration twice.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        await conn.run_sync(_upgrade)


class Database:
    """Sessions for reads and for write transactions.

    SQLite allows one writer at a time and fails, rather than waits, when two
    transactions both try to upgrade to writing; so on SQLite this process
    queues its write transactions itself. PostgreSQL needs no such queue: row
    locks and the conditional updates of the domain layer keep replicas safe.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_lock: asyncio.Lock | None = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else None
        )
        #: Point lookups for the hot paths (see keyserver.reads).
        self.reads: KeyReads = create_reads(engine)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success, rolled back on error."""
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        self.reads.close()
        await self.engine.dispose()
