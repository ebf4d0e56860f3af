"""Engines, transactions and migrations for SQLite (aiosqlite) and PostgreSQL
(asyncpg)."""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, make_url, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from keyserver.errors import Conflict
from keyserver.reads import KeyReads, create_reads
from keyserver.statements import Tx

_MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every replica.
_MIGRATION_LOCK_ID = 0x6B657973


#: Connections a server keeps open to PostgreSQL, and how many more it may open
#: in a burst. SQLAlchemy's default of 5 is below what one busy server has in
#: flight (16 calls in `make bench`): the overflow connections were opened and
#: closed over and over, each a new PostgreSQL backend process, which showed as
#: p99 latencies of 100-480 ms for Regenerate. Several replicas share the
#: server's max_connections (100 by default): three use at most 90.
POSTGRES_POOL_SIZE = 20
POSTGRES_MAX_OVERFLOW = 10


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
    if parsed.get_backend_name() == "postgresql":
        schema = parsed.query.get("schema")
        if isinstance(schema, str):
            parsed = parsed.difference_update_query(["schema"])
            kwargs.setdefault("connect_args", {}).setdefault(
                "server_settings", {"search_path": schema}
            )
        kwargs.setdefault("pool_size", POSTGRES_POOL_SIZE)
        kwargs.setdefault("max_overflow", POSTGRES_MAX_OVERFLOW)
    # A failed statement's message then holds no parameters, so a traceback in
    # the log never shows a value that was written.
    kwargs.setdefault("hide_parameters", True)
    engine = create_async_engine(parsed, **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (Verify) run while a rotation writes; NORMAL syncs at
    # checkpoints, not at every commit, which WAL makes safe against
    # corruption (a power cut can lose the last commits, not the database).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


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


T = TypeVar("T")


class Database:
    """Transactions for the domain layer, and point lookups for the hot paths.

    The domain layer writes each transaction as a plain function of a Tx (a sync
    Core connection, see keyserver.statements), so one body serves both
    backends:

    - SQLite runs it inline, on the event loop's thread, on one pysqlite
      connection kept open. A statement on a local file takes microseconds,
      far less than a round trip to a driver thread per statement (which is
      what aiosqlite costs), and a function that never awaits cannot
      interleave with another: the process's transactions are serial, as
      SQLite's single writer wants them anyway. Each starts with BEGIN
      IMMEDIATE, so it holds the write lock from its first read and another
      process writing the same file cannot slip in between.
    - PostgreSQL runs it through AsyncConnection.run_sync, on asyncpg; row
      locks and the domain's conditional updates keep concurrent replicas
      correct.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite: Connection | None = None
        if engine.dialect.name == "sqlite":
            self._sqlite = _sqlite_sync_engine(engine).connect()
        #: Point lookups for the hot paths (see keyserver.reads).
        self.reads: KeyReads = create_reads(engine)

    async def transaction(self, work: Callable[[Tx], T]) -> T:
        """Run `work` in one transaction: committed if it returns, rolled back if
        it raises. A constraint violation becomes Conflict."""
        try:
            if self._sqlite is not None:
                with self._sqlite.begin():
                    tx = self._sqlite_tx()
                    tx.driver.execute("BEGIN IMMEDIATE")
                    return work(tx)
            async with self.engine.begin() as shared:
                return await shared.run_sync(lambda conn: work(Tx(conn, None)))
        except (IntegrityError, sqlite3.IntegrityError) as exc:
            # The checks before a write catch the common cases; this is the
            # race in which another replica took the same value first.
            raise Conflict(
                "a concurrent change to the same key won; try again"
            ) from exc

    async def query(self, work: Callable[[Tx], T]) -> T:
        """Run the read-only `work` and return its result."""
        if self._sqlite is not None:
            with self._sqlite.begin():
                return work(self._sqlite_tx())
        async with self.engine.connect() as shared:
            return await shared.run_sync(lambda conn: work(Tx(conn, None)))

    def _sqlite_tx(self) -> Tx:
        assert self._sqlite is not None
        driver = self._sqlite.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return Tx(self._sqlite, driver)

    async def close(self) -> None:
        self.reads.close()
        if self._sqlite is not None:
            engine = self._sqlite.engine
            self._sqlite.close()
            engine.dispose()
        await self.engine.dispose()


def _sqlite_sync_engine(engine: AsyncEngine) -> Engine:
    sync = sa_create_engine(
        engine.url.set(drivername="sqlite+pysqlite"), hide_parameters=True
    )
    event.listen(sync, "connect", _sqlite_pragmas)
    return sync
