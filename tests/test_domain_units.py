"""Plain-Python rules: durations, secrets, message conversion and the schema
migrations."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import pathlib

import pytest
from sqlalchemy import inspect

from keyserver import clock, convert, db, durations, logs, settings, tokens
from keyserver.config import Settings, load_secrets
from keyserver.errors import InvalidArgument
from keyserver.reads import COLUMN_NAMES, KeySnapshot
from keyservice.v1 import key_service_pb2

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
                    "retired": [
                        ix["column_names"]
                        for ix in inspector.get_indexes("retired_secrets")
                    ],
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
    # Each rotation ends earlier grace periods by key and valid_until.
    assert schema["retired"] == [["key_id", "valid_until"]]


@pytest.mark.parametrize(
    "request_class",
    [
        key_service_pb2.GenerateRequest,
        key_service_pb2.RegenerateRequest,
        key_service_pb2.UpdateRequest,
    ],
)
def test_every_setting_of_a_request_tells_unsent_from_zero(
    request_class: type[object],
) -> None:
    fields = request_class.DESCRIPTOR.fields_by_name  # type: ignore[attr-defined]
    settable = settings.ALL_FIELDS - {"budget_id", "enforced_params"}

    assert settable <= set(fields)
    for name in settings.ALL_FIELDS & set(fields):
        assert fields[name].has_presence, f"{name} cannot tell unsent from zero"

    sent = request_class(spend=0.0, blocked=False, key_alias="")  # type: ignore[call-arg]
    assert convert.sent_settings(sent) == {  # type: ignore[arg-type]
        "spend": 0.0,
        "blocked": False,
        "key_alias": "",
    }


def _row(**values: object) -> KeySnapshot:
    """A key row holding only what every key has, then `values`."""
    created = dt.datetime(2024, 2, 29, 23, 59, 59, 999000)
    row: dict[str, object] = dict.fromkeys(COLUMN_NAMES)
    row.update(
        id="id-1",
        token="ab" * 32,
        key_name="sk-...abcd",
        spend=0.0,
        blocked=False,
        rotation_count=0,
        created_at=created,
        updated_at=created,
        metadata_={},
        permissions={},
        model_max_budget={},
        model_rpm_limit={},
        model_tpm_limit={},
    )
    row.update({name: [] for name in settings.LIST_FIELDS})
    return KeySnapshot(**{**row, **values})


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(1970, 1, 1),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999000),
        dt.datetime(2025, 1, 30, 14, 52, 26, 912000),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    ],
)
def test_key_message_timestamps_are_the_stored_utc_times(when: dt.datetime) -> None:
    key = convert.key_message(_row(created_at=when, expires=when, last_rotated_at=when))

    for field in (key.created_at, key.expires, key.last_rotated_at):
        assert field.ToDatetime() == when
    assert not key.HasField("budget_reset_at")


def test_key_message_copies_every_setting_and_leaves_unset_ones_unset() -> None:
    row = _row(
        key_alias="ci",
        duration="30d",
        max_budget=0.0,
        user_id="u",
        team_id="t",
        max_parallel_requests=0,
        tpm_limit=1,
        rpm_limit=2,
        budget_duration="1h",
        budget_id="b",
        soft_budget=3.5,
        models=["gpt-4"],
        tags=["prod"],
        allowed_cache_controls=["no-cache"],
        guardrails=["pii"],
        enforced_params=["user"],
        model_rpm_limit={"gpt-4": 10},
        model_tpm_limit={"gpt-4": 20},
        model_max_budget={"gpt-4": {"budget_limit": 0.5, "time_period": "30d"}},
        metadata_={"team": "core-infra", "nested": {"a": [1, None]}},
        permissions={"manage_team_keys": True},
        spend=1.25,
        blocked=True,
        rotation_count=4,
    )

    full = convert.key_message(row, "sk-plaintext")
    bare = convert.key_message(_row())

    assert full.key == "sk-plaintext" and full.token_id == row.token
    assert (full.key_alias, full.duration, full.user_id, full.team_id) == (
        "ci",
        "30d",
        "u",
        "t",
    )
    assert full.HasField("max_budget") and full.max_budget == 0.0
    assert full.HasField("max_parallel_requests")
    assert (full.tpm_limit, full.rpm_limit, full.soft_budget) == (1, 2, 3.5)
    assert (full.budget_duration, full.budget_id) == ("1h", "b")
    assert list(full.models) == ["gpt-4"] and list(full.tags) == ["prod"]
    assert list(full.allowed_cache_controls) == ["no-cache"]
    assert list(full.guardrails) == ["pii"]
    assert list(full.enforced_params) == ["user"]
    assert dict(full.model_rpm_limit) == {"gpt-4": 10}
    assert dict(full.model_tpm_limit) == {"gpt-4": 20}
    assert full.model_max_budget["gpt-4"].budget_limit == 0.5
    assert full.model_max_budget["gpt-4"].time_period == "30d"
    assert full.metadata["nested"]["a"][0] == 1
    assert full.permissions["manage_team_keys"] is True
    assert (full.spend, full.blocked, full.rotation_count) == (1.25, True, 4)

    assert bare.key == bare.token_id
    always_set = {"metadata", "permissions", "created_at", "updated_at"}
    assert set(convert.null_fields(bare)) == set(convert.NULLABLE_KEY_FIELDS) - (
        always_set
    )
    assert bare.HasField("metadata") and bare.HasField("permissions")
    assert not bare.models and not bare.model_max_budget


def test_log_lines_keep_the_standard_timestamp() -> None:
    cached = logs.SecondCachingFormatter(logs.FORMAT)
    standard = logging.Formatter(logs.FORMAT)

    for created in (1733259316.713, 1733259316.999, 1733259317.0, 1733259999.5):
        record = logging.LogRecord(
            "keyserver", logging.INFO, "", 0, "rpc=%s", ("Info",), None
        )
        record.created, record.msecs = created, (created % 1) * 1000
        assert cached.format(record) == standard.format(record)


def test_the_clock_reads_naive_utc_in_whole_milliseconds() -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    now = clock.utcnow()
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    assert now.tzinfo is None
    assert now.microsecond % 1000 == 0
    assert before - dt.timedelta(milliseconds=1) < now <= after


def test_the_models_and_the_migrations_describe_the_same_schema(
    tmp_path: pathlib.Path,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine as create_sync_engine

    from keyserver.models import Base

    path = tmp_path / "k.db"

    async def migrate() -> None:
        engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await db.migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    engine = create_sync_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()

    assert differences == []


def test_secrets_are_created_once_and_private_files_are_checked(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings_ = Settings(data_dir=tmp_path / "data")

    first, again = load_secrets(settings_), load_secrets(settings_)

    assert first.master_key == again.master_key
    assert first.hash_secret == again.hash_secret
    key_file = tmp_path / "data" / "master_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in key_file.parent.iterdir()) == [
        "hash_secret",
        "master_key",
    ]
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)

    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_secrets(settings_)
    assert "can be read by other users" in caplog.text
    assert first.master_key not in caplog.text


def test_a_short_configured_master_key_is_accepted_with_a_warning(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings_ = Settings(data_dir=tmp_path / "data", master_key="sk-1234")

    with caplog.at_level(logging.WARNING):
        loaded = load_secrets(settings_)

    assert loaded.master_key == "sk-1234"
    assert "easy to guess" in caplog.text
    assert "sk-1234" not in caplog.text
