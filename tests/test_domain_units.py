"""Plain-Python rules: durations, secrets and the schema migrations."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
from sqlalchemy import inspect

from keyserver import db, durations, tokens
from keyserver.errors import InvalidArgument

START = dt.datetime(2025, 1, 31, 12, 0, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", START + dt.timedelta(seconds=30)),
        ("15m", START + dt.timedelta(minutes=15)),
        ("24h", START + dt.timedelta(hours=24)),
        ("7d", START + dt.timedelta(days=7)),
        ("2w", START + dt.timedelta(weeks=2)),
        ("1mo", dt.datetime(2025, 2, 28, 12, 0, 0)),
        ("12mo", dt.datetime(2026, 1, 31, 12, 0, 0)),
    ],
)
def test_durations_move_the_clock_forward(value: str, expected: dt.datetime) -> None:
    assert durations.add(START, durations.validate(value, param="duration")) == expected


@pytest.mark.parametrize("value", ["", "0s", "1y", "1.5h", "-1", "7 d", "1M", "d"])
def test_bad_durations_name_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        durations.validate(value, param="grace_period")
    assert caught.value.param == "grace_period"


def test_new_secrets_are_long_random_and_url_safe() -> None:
    drawn = {tokens.new_secret() for _ in range(100)}

    assert len(drawn) == 100
    for secret in drawn:
        assert secret.startswith("sk-")
        body = secret[3:]
        assert len(body) >= 43  # 256 bits in base64url
        assert set(body) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


def test_token_is_a_keyed_hash_that_depends_on_the_server_secret() -> None:
    one, other = tokens.Hasher(b"a" * 32), tokens.Hasher(b"b" * 32)

    assert one.token("sk-x") == one.token("sk-x") != other.token("sk-x")
    assert "sk-x" not in one.token("sk-x")
    assert one.matches(one.token("sk-x"), "sk-x")
    assert "a" * 32 not in repr(one)


def test_sealed_replays_need_the_same_key_and_detect_tampering() -> None:
    key = bytes(32)
    sealed = tokens.seal(key, b"payload with sk-secret")

    assert b"sk-secret" not in sealed
    assert tokens.unseal(key, sealed) == b"payload with sk-secret"
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        tokens.unseal(bytes([1]) * 32, sealed)


async def test_migrations_create_every_table_and_hot_path_index(
    tmp_path: pathlib.Path,
) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    try:
        await db.migrate(engine)
        await db.migrate(engine)  # a second run is a no-op

        async with engine.connect() as conn:

            def describe(sync_conn: object) -> dict[str, object]:
                inspector = inspect(sync_conn)
                return {
                    "tables": set(inspector.get_table_names()),
                    "keys": {
                        tuple(ix["column_names"]): ix["unique"]
                        for ix in inspector.get_indexes("keys")
                    },
                    "retired_pk": inspector.get_pk_constraint("retired_secrets"),
                }

            schema = await conn.run_sync(describe)
    finally:
        await engine.dispose()

    assert schema["tables"] >= {
        "keys",
        "retired_secrets",
        "audit_events",
        "idempotency_records",
        "alembic_version",
    }
    indexes = schema["keys"]
    assert isinstance(indexes, dict)
    assert indexes[("token",)] in (True, 1)
    for column in ("key_alias", "user_id", "team_id", "created_at"):
        assert (column,) in indexes
    assert schema["retired_pk"]["constrained_columns"] == ["token"]  # type: ignore[index]
