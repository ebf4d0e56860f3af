"""Bulk seeding of the `keys` table, straight into the database.

The rows are what KeyManager.generate would write for a key with no settings
but a team, built from the table's own column list so that a new column with a
plain default does not break the seeder. Going through the server would cost
one RPC and one transaction per key: hours for a million. Instead:

- SQLite: one connection of the stdlib driver, one transaction, executemany in
  batches; the PRAGMAs that make it fast apply to this connection only (the
  server sets its own on every connection it opens).
- PostgreSQL: COPY (asyncpg's copy_records_to_table), then ANALYZE.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Double, Integer, Table

from bench import keyset
from keyserver.models import KeyRow

BATCH = 50_000
#: Keys per team: a rotation storm rotates one team's keys.
TEAM_SIZE = 1_000

_TABLE: Table = KeyRow.__table__  # type: ignore[assignment]
#: The columns that differ from key to key.
_PER_KEY = frozenset({"id", "token", "key_name", "team_id"})


def _constant(column: Any, now: dt.datetime) -> Any:
    """The value of a column that is the same for every seeded key."""
    if column.nullable:
        return None
    default = column.default
    if default is not None:
        # A callable default is wrapped to take the insert context.
        return default.arg(None) if default.is_callable else default.arg
    if isinstance(column.type, JSON):
        return []
    if isinstance(column.type, Boolean):
        return False
    if isinstance(column.type, Double):
        return 0.0
    if isinstance(column.type, Integer):
        return 0
    if isinstance(column.type, DateTime):
        return now
    raise ValueError(f"no bench value for the non-null column {column.name}")


def _row_factory(
    hash_secret: bytes,
    now: dt.datetime,
    convert: Callable[[Any], Any],
    present: set[str] | None = None,
) -> tuple[list[str], Callable[[int], tuple[Any, ...]]]:
    """The column names, and a function that builds the row of key `i`.

    `present` limits the row to the columns the database has, so an older
    schema (a server revision measured with --server-ref) can be seeded too.
    """
    columns = [c for c in _TABLE.columns if present is None or c.name in present]
    names = [column.name for column in columns]
    template = [
        None if column.name in _PER_KEY else convert(_constant(column, now))
        for column in columns
    ]
    at = {name: index for index, name in enumerate(names)}
    i_id, i_token, i_name = at["id"], at["token"], at["key_name"]
    i_team = at["team_id"]

    def row(i: int) -> tuple[Any, ...]:
        values = list(template)
        values[i_id] = f"00000000-0000-4000-8000-{i:012d}"
        values[i_token] = keyset.token(hash_secret, i)
        values[i_name] = f"sk-...{keyset.plaintext(i)[-4:]}"
        values[i_team] = f"bench-team-{i // TEAM_SIZE:06d}"
        return tuple(values)

    return names, row


def _batches(size: int, row: Callable[[int], tuple[Any, ...]]) -> Iterator[list[Any]]:
    for start in range(0, size, BATCH):
        yield [row(i) for i in range(start, min(size, start + BATCH))]


def _sqlite_value(value: Any) -> Any:
    # How SQLAlchemy stores these types in SQLite.
    if isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def seed_sqlite(path: str, hash_secret: bytes, size: int) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    connection = sqlite3.connect(path, isolation_level=None)
    present = {info[1] for info in connection.execute("PRAGMA table_info(keys)")}
    names, row = _row_factory(hash_secret, now, _sqlite_value, present)
    insert = (
        f"INSERT INTO keys ({', '.join(names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    try:
        # For this connection only: nothing else uses the file while it seeds,
        # and a crash here only loses the benchmark's scratch database.
        # Straight into the file instead of through the WAL (which would write
        # every page twice); the server turns WAL back on when it connects.
        connection.execute("PRAGMA journal_mode=MEMORY")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-2000000")
        connection.execute("PRAGMA temp_store=MEMORY")
        connection.execute("BEGIN")
        # Building an index from sorted data beats a million random inserts
        # into it; the indexes come back exactly as the migration made them.
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'keys' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        for batch in _batches(size, row):
            connection.executemany(insert, batch)
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def _postgres_value(value: Any) -> Any:
    # asyncpg's json codec takes the JSON text.
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


async def seed_postgres(dsn: str, schema: str, hash_secret: bytes, size: int) -> None:
    import asyncpg

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    connection = await asyncpg.connect(dsn)
    try:
        present = {
            record["column_name"]
            for record in await connection.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = 'keys'",
                schema,
            )
        }
        names, row = _row_factory(hash_secret, now, _postgres_value, present)
        async with connection.transaction():
            # As for SQLite: index once at the end, exactly as migrated. The
            # primary key stays (other tables refer to it).
            indexes = await connection.fetch(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = $1 AND tablename = 'keys' "
                "AND indexname <> 'keys_pkey'",
                schema,
            )
            for index in indexes:
                await connection.execute(
                    f'DROP INDEX "{schema}"."{index["indexname"]}"'
                )
            for batch in _batches(size, row):
                await connection.copy_records_to_table(
                    "keys", records=batch, columns=names, schema_name=schema
                )
            await connection.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for index in indexes:
                await connection.execute(index["indexdef"])
        await connection.execute(f'ANALYZE "{schema}".keys')
    finally:
        await connection.close()
