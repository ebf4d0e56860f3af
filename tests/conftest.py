"""Fixtures: a real grpc.aio server on 127.0.0.1:0 over a real database.

Every test that takes `server` runs once on SQLite (a file in a temporary
directory) and once on PostgreSQL (a schema of its own in the database named by
KEYSERVICE_TEST_POSTGRES_URL; skipped, with the reason, when that is unset).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from keyserver import app
from keyserver.clock import FakeClock
from keyserver.config import Settings
from keyservice.v1 import key_service_pb2_grpc

POSTGRES_URL_ENV = "KEYSERVICE_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "KEYSERVICE_REQUIRE_POSTGRES"


@dataclasses.dataclass
class ServerHandle:
    """A running server under test and what a test needs to call it."""

    address: str
    port: int
    master_key: str
    clock: FakeClock
    data_dir: pathlib.Path
    database_url: str
    running: app.RunningServer


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that authenticates as `key`."""
    return (("authorization", f"Bearer {key}"),)


def admin_md(server: ServerHandle) -> tuple[tuple[str, str], ...]:
    return bearer(server.master_key)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not os.environ.get(POSTGRES_URL_ENV):
        if os.environ.get(REQUIRE_POSTGRES_ENV):
            pytest.fail(f"{REQUIRE_POSTGRES_ENV} is set but {POSTGRES_URL_ENV} is not")
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_URL_ENV} (e.g. "
            "postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    return str(request.param)


async def _postgres_schema(base_url: str) -> tuple[str, str]:
    """Create a fresh schema; return (url that uses it, schema name)."""
    import asyncpg

    schema = f"ks_test_{uuid.uuid4().hex[:12]}"
    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    separator = "&" if "?" in base_url else "?"
    # asyncpg's server_settings are not URL options; libpq-style `options` is.
    return f"{base_url}{separator}options=-csearch_path%3D{schema}", schema


async def _drop_schema(base_url: str, schema: str) -> None:
    import asyncpg

    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def database_url(backend: str, tmp_path: pathlib.Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'keyservice.db'}"
        return
    base = os.environ[POSTGRES_URL_ENV]
    url, schema = await _postgres_schema(base)
    try:
        yield url
    finally:
        await _drop_schema(base, schema)


@pytest.fixture
async def server(
    database_url: str, tmp_path: pathlib.Path
) -> AsyncIterator[ServerHandle]:
    data_dir = tmp_path / "data"
    settings = Settings(
        data_dir=data_dir, listen="127.0.0.1:0", database_url=database_url
    )
    clock = FakeClock()
    running = await app.start(settings, clock=clock)
    master_key = (data_dir / "master_key").read_text().strip()
    try:
        yield ServerHandle(
            address=running.address,
            port=running.port,
            master_key=master_key,
            clock=clock,
            data_dir=data_dir,
            database_url=database_url,
            running=running,
        )
    finally:
        await running.stop(grace=1)


@pytest.fixture
async def channel(server: ServerHandle) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as chan:
        yield chan


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> key_service_pb2_grpc.KeyServiceStub:
    return key_service_pb2_grpc.KeyServiceStub(channel)


@pytest.fixture
def captured_logs(
    caplog: pytest.LogCaptureFixture,
) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of the test, at every level, for secret scans."""
    caplog.set_level(logging.DEBUG)
    yield caplog
