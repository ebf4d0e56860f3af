"""Prepared statements on SQLite store and read exactly what SQLAlchemy Core does."""

from __future__ import annotations

import datetime as dt
import pathlib
import sqlite3
from collections.abc import Iterator
from typing import Any, cast

import pytest
from sqlalchemy import Connection, Table, create_engine, insert, select, update

from keyserver.models import Base, KeyRow
from keyserver.reads import COLUMN_NAMES, KEY_COLUMNS
from keyserver.statements import Prepared, Tx

_KEYS = cast(Table, KeyRow.__table__)


@pytest.fixture
def conn(tmp_path: pathlib.Path) -> Iterator[Connection]:
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path / 'k.db'}")
    Base.metadata.create_all(engine)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def _driver(conn: Connection) -> sqlite3.Connection:
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _values(key_id: str, when: dt.datetime) -> dict[str, Any]:
    return {
        "id": key_id,
        "token": key_id * 2,
        "key_name": "sk-...abcd",
        "key_alias": "ci-bot",
        "user_id": None,
        "team_id": "core",
        "models": ["gpt-4", "gpt-3.5-turbo"],
        "tags": [],
        "spend": 0.25,
        "max_budget": 100.0,
        "soft_budget": None,
        "model_max_budget": {"gpt-4": {"budget_limit": 0.5, "time_period": "30d"}},
        "budget_duration": "30d",
        "budget_reset_at": when,
        "max_parallel_requests": 0,
        "tpm_limit": 10,
        "rpm_limit": None,
        "model_rpm_limit": {"gpt-4": 100},
        "model_tpm_limit": {},
        "allowed_cache_controls": [],
        "duration": None,
        "expires": None,
        "metadata": {"team": "core-infra", "nested": {"ünïcode": [1, None, True]}},
        "permissions": {},
        "guardrails": ["pii"],
        "blocked": True,
        "budget_id": None,
        "enforced_params": [],
        "created_at": when,
        "updated_at": when.replace(microsecond=0),
        "rotation_count": 3,
        "last_rotated_at": dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
    }


def _stored(conn: Connection, key_id: str) -> tuple[Any, ...]:
    """The row exactly as SQLite holds it, with no conversion."""
    row = _driver(conn).execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
    assert row is not None
    return tuple(row[1:])  # all but the id, which differs on purpose


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2025, 1, 30, 14, 52, 26, 912000),
        dt.datetime(2024, 2, 29, 0, 0, 0),
        dt.datetime(1, 1, 1, 0, 0, 0, 1),
    ],
)
def test_a_prepared_insert_stores_what_core_stores(
    conn: Connection, when: dt.datetime
) -> None:
    with conn.begin():
        conn.execute(insert(_KEYS), _values("a" * 32, when))
        Tx(conn, _driver(conn)).execute(
            Prepared(insert(_KEYS)), _values("b" * 32, when)
        )

    core, prepared = _stored(conn, "a" * 32), _stored(conn, "b" * 32)
    assert prepared[1:] == core[1:]  # the token differs with the id


def test_prepared_reads_convert_rows_as_core_does(conn: Connection) -> None:
    when = dt.datetime(2025, 1, 30, 14, 52, 26, 912000)
    query = select(*KEY_COLUMNS).where(_KEYS.c.id == "a" * 32)
    with conn.begin():
        conn.execute(insert(_KEYS), _values("a" * 32, when))
        fast = Tx(conn, _driver(conn)).first(Prepared(query), {})
        core = Tx(conn, None).first(Prepared(query), {})

    assert fast is not None and core is not None
    assert tuple(fast) == tuple(core)
    by_name = dict(zip(COLUMN_NAMES, fast, strict=True))
    assert by_name["created_at"] == when
    assert by_name["blocked"] is True
    assert by_name["metadata_"]["nested"] == {"ünïcode": [1, None, True]}


def test_a_prepared_update_sets_only_the_columns_given_and_counts_rows(
    conn: Connection,
) -> None:
    when = dt.datetime(2025, 1, 30, 14, 52, 26, 912000)
    statement = Prepared(update(_KEYS).where(_KEYS.c.id == "a" * 32))
    later = when + dt.timedelta(days=1)
    with conn.begin():
        conn.execute(insert(_KEYS), _values("a" * 32, when))
        conn.execute(insert(_KEYS), _values("b" * 32, when))
        tx = Tx(conn, _driver(conn))
        hit = tx.execute(statement, {"tags": ["prod"], "updated_at": later})
        conn.execute(
            update(_KEYS).where(_KEYS.c.id == "b" * 32),
            {"tags": ["prod"], "updated_at": later},
        )

    assert hit == 1
    assert _stored(conn, "a" * 32)[1:] == _stored(conn, "b" * 32)[1:]


def test_many_column_sets_keep_the_compiled_cache_bounded(conn: Connection) -> None:
    when = dt.datetime(2025, 1, 30, 14, 52, 26, 912000)
    statement = Prepared(update(_KEYS).where(_KEYS.c.id == "a" * 32))
    names = ("key_alias", "user_id", "team_id", "budget_id", "duration")
    # Every non-empty subset of five columns, 31 in all, four times over.
    subsets = [
        [name for bit, name in enumerate(names) if number >> bit & 1]
        for number in range(1, 2 ** len(names))
    ] * 4
    with conn.begin():
        conn.execute(insert(_KEYS), _values("a" * 32, when))
        tx = Tx(conn, _driver(conn))
        for count, subset in enumerate(subsets):
            changes = {name: f"{name}-{count}" for name in subset}
            changes["rotation_count"] = count
            assert tx.execute(statement, changes) == 1

    assert len(statement._compiled) == 31
    stored = _driver(conn).execute(
        "SELECT rotation_count, key_alias, duration FROM keys WHERE id = ?",
        ("a" * 32,),
    )
    assert stored.fetchone() == (len(subsets) - 1, "key_alias-123", "duration-123")
