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
import traceback
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from keyserver import app, db
from keyserver.clock import FakeClock
from keyserver.config import Settings
from keyserver.models import Base
from keyservice.v1 import key_service_pb2_grpc

POSTGRES_URL_ENV = "KEYSERVICE_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "KEYSERVICE_REQUIRE_POSTGRES"


@dataclasses.dataclass
class ServerHandle:
    """A running server under test and what a test needs to call it."""

    address: str
    port: int
    master_key: str = dataclasses.field(repr=False)
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
    return f"{base_url}{separator}schema={schema}", schema


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


class SecretRecorder(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Remembers every plaintext key a test sends or is issued."""

    def __init__(self, secrets: set[str]) -> None:
        self.secrets = secrets

    def _note(self, message: Any) -> None:
        for name in ("key", "new_key"):
            value = getattr(message, name, None)
            if isinstance(value, str) and value.startswith("sk-"):
                self.secrets.add(value)
            elif value is not None and hasattr(value, "DESCRIPTOR"):
                self._note(value)

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        self._note(request)
        call = await continuation(client_call_details, request)
        try:
            self._note(await call)
        except grpc.aio.AioRpcError:
            pass
        return call


@pytest.fixture
def issued_secrets() -> set[str]:
    """Every plaintext key of the test; none may be stored or logged."""
    return set()


async def database_dump(database_url: str) -> list[tuple[str, Any]]:
    """Every value of every column of every table, with its table's name."""
    engine = db.create_engine(database_url)
    try:
        async with engine.connect() as conn:
            dump: list[tuple[str, Any]] = []
            for table in Base.metadata.sorted_tables:
                for row in await conn.execute(table.select()):
                    dump.extend((table.name, value) for value in row)
            return dump
    finally:
        await engine.dispose()


def assert_no_secret_stored(
    secrets: set[str], dump: list[tuple[str, Any]], records: list[logging.LogRecord]
) -> None:
    """Fail if any plaintext appears in a database value or a log line."""
    for secret in secrets:
        for table, value in dump:
            text = value if isinstance(value, bytes) else repr(value).encode()
            assert secret.encode() not in text, f"a plaintext key is stored in {table}"
        for record in records:
            assert secret not in _logged_text(record), "a plaintext key was logged"


def _logged_text(record: logging.LogRecord) -> str:
    """All a handler could write of a record: its message and any traceback."""
    text = record.getMessage()
    if record.exc_info:
        text += "".join(traceback.format_exception(*record.exc_info))
    return text + (record.exc_text or "") + (record.stack_info or "")


@pytest.fixture
async def server(
    database_url: str,
    tmp_path: pathlib.Path,
    issued_secrets: set[str],
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[ServerHandle]:
    """A server on a fresh database. At teardown it checks that no plaintext key
    the test sent or was issued is in any database column or log record."""
    caplog.set_level(logging.DEBUG)
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
    issued_secrets.add(master_key)
    assert_no_secret_stored(
        issued_secrets, await database_dump(database_url), caplog.records
    )


@pytest.fixture
async def channel(
    server: ServerHandle, issued_secrets: set[str]
) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(
        server.address, interceptors=[SecretRecorder(issued_secrets)]
    ) as chan:
        yield chan


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> key_service_pb2_grpc.KeyServiceStub:
    return key_service_pb2_grpc.KeyServiceStub(channel)
