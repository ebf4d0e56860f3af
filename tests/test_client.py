"""The Python clients (keyclient) against a live server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from keyclient import (
    AsyncKeyClient,
    ConflictError,
    InvalidArgumentError,
    KeyClient,
    KeyServiceError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    Secret,
    UnauthenticatedError,
    UnavailableError,
)
from keyserver import app
from keyserver.config import Settings
from keyservice.v1 import key_service_pb2, key_service_pb2_grpc
from tests.conftest import ServerHandle, admin_md, bearer

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def backend() -> str:
    # The client is what is under test here; the server's own tests run every
    # behaviour on both databases, so SQLite is enough and keeps this fast.
    return "sqlite"


# Short backoffs: the tests count attempts, they do not time them.
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


def _client(server: ServerHandle, **kwargs: Any) -> AsyncKeyClient:
    kwargs.setdefault("api_key", server.master_key)
    kwargs.setdefault("retry", FAST_RETRY)
    return AsyncKeyClient(server.address, **kwargs)


class _DropFirstResponse(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Lets the server finish one call of `method`, then loses its answer.

    This is what a connection reset after the server committed looks like to
    a client: UNAVAILABLE, with the work done.
    """

    def __init__(self, method: str) -> None:
        self.method = f"/keyservice.v1.KeyService/{method}"
        self.attempts: list[dict[str, str]] = []

    async def intercept_unary_unary(
        self,
        continuation: Callable[[Any, Any], Awaitable[Any]],
        client_call_details: Any,
        request: Any,
    ) -> Any:
        call = await continuation(client_call_details, request)
        method = client_call_details.method
        if isinstance(method, bytes):
            method = method.decode()
        if method != self.method:
            return call
        self.attempts.append(dict(client_call_details.metadata or ()))
        if len(self.attempts) == 1:
            await call  # the server has processed the request
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="connection reset by test interceptor",
            )
        return call


class _AlwaysUnavailable(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Fails every call before it reaches the server, and counts them."""

    def __init__(self) -> None:
        self.calls = 0

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        self.calls += 1
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="no route (test interceptor)",
        )


async def test_async_client_calls_every_rpc(server: ServerHandle) -> None:
    async with _client(server) as client:
        issued = await client.generate(
            key_alias="ci-bot",
            team_id="core-infra",
            models=["gpt-4o"],
            tags=["ci"],
            max_budget=10,
            metadata={"owner": "ci", "nested": {"n": 1}},
            model_rpm_limit={"gpt-4o": 5},
        )
        assert issued.secret.reveal().startswith("sk-")
        assert issued.key.key == issued.key.token_id
        assert issued.key.metadata["nested"]["n"] == 1

        info = await client.info(issued.secret)
        assert info.key_alias == "ci-bot"
        assert list(info.models) == ["gpt-4o"]
        assert dict(info.model_rpm_limit) == {"gpt-4o": 5}

        updated = await client.update(issued.token_id, max_budget=20, tags=[])
        assert updated.max_budget == 20
        assert list(updated.tags) == []

        page = await client.list_keys(team_id="core-infra", return_full_object=True)
        assert page.total_count == 1
        full = page.keys[0]
        assert isinstance(full, dict)
        assert full["token_id"] == issued.token_id

        assert (await client.block(issued.secret)).blocked
        blocked = await client.verify(issued.secret)
        assert (blocked.valid, blocked.reason) == (False, "BLOCKED")
        assert not (await client.unblock(issued.token_id)).blocked

        rotated = await client.regenerate(
            issued.secret,
            max_budget=100,
            metadata={"team": "core-infra"},
            grace_period="24h",
        )
        assert rotated.secret != issued.secret
        assert rotated.key.id == issued.key.id
        assert rotated.key.max_budget == 100
        assert rotated.key.rotation_count == 1

        old = await client.verify(issued.secret)
        assert (old.valid, old.in_grace_period) == (True, True)
        new = await client.verify(rotated.secret)
        assert (new.valid, new.reason, new.in_grace_period) == (True, "OK", False)

        assert await client.delete([rotated.secret]) == [rotated.token_id]
        with pytest.raises(NotFoundError):
            await client.info(rotated.token_id)


async def test_sync_client_calls_every_rpc(server: ServerHandle) -> None:
    # The server runs on this test's event loop, so the blocking client runs
    # in a worker thread.
    def scenario() -> None:
        with KeyClient(server.address, api_key=server.master_key) as client:
            issued = client.generate(key_alias="sync", user_id="u1")
            assert client.info(issued.token_id).user_id == "u1"
            assert client.update(issued.secret, rpm_limit=7).rpm_limit == 7
            assert client.list_keys(user_id="u1").keys == [issued.token_id]
            assert client.block(issued.secret).blocked
            assert not client.unblock(issued.secret).blocked
            rotated = client.regenerate(issued.secret, key_alias="sync-2")
            assert rotated.key.key_alias == "sync-2"
            assert not client.verify(issued.secret).valid
            assert client.verify(rotated.secret).valid
            assert client.delete(key_aliases=["sync-2"]) == [rotated.token_id]
            with pytest.raises(NotFoundError):
                client.info(rotated.token_id)

    await asyncio.to_thread(scenario)


async def _server_details(server: ServerHandle, rpc: str, request: Any) -> str:
    """The message the server itself sends for a failing call."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        method = channel.unary_unary(
            f"/keyservice.v1.KeyService/{rpc}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=lambda data: data,
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await method(request, metadata=admin_md(server))
    return str(raised.value.details())


async def test_errors_map_to_exception_types_with_the_server_message(
    server: ServerHandle,
) -> None:
    async with _client(server) as admin:
        owned = await admin.generate(key_alias="owned")

        missing = "sk-" + "x" * 40
        with pytest.raises(NotFoundError) as not_found:
            await admin.info(missing)
        expected = await _server_details(
            server, "Info", key_service_pb2.InfoRequest(key=missing)
        )
        assert not_found.value.message == expected
        assert not_found.value.code == grpc.StatusCode.NOT_FOUND
        assert not_found.value.error_type == "not_found_error"

        with pytest.raises(InvalidArgumentError) as invalid:
            await admin.generate(max_budget=-1)
        assert invalid.value.param == "max_budget"
        assert invalid.value.message

        with pytest.raises(ConflictError) as conflict:
            await admin.generate(key=owned.secret)
        assert conflict.value.code == grpc.StatusCode.ALREADY_EXISTS

    async with _client(server, api_key=None) as anonymous:
        with pytest.raises(UnauthenticatedError):
            await anonymous.info(owned.token_id)

    async with _client(server, api_key=owned.secret) as itself:
        with pytest.raises(PermissionDeniedError) as denied:
            await itself.update(owned.token_id, max_budget=1)
        assert denied.value.error_type == "permission_error"


async def test_unreachable_server_raises_unavailable_at_the_deadline(
    unused_tcp_port: int,
) -> None:
    # The first attempt fails at once; the retry waits for a server until the
    # deadline, and the error keeps the first attempt's reason.
    async with AsyncKeyClient(
        f"127.0.0.1:{unused_tcp_port}", retry=FAST_RETRY, timeout=1
    ) as client:
        with pytest.raises(UnavailableError) as raised:
            await client.info("sk-whatever")
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "the attempt before was UNAVAILABLE: " in raised.value.message
    assert isinstance(raised.value, KeyServiceError)


async def test_regenerate_retried_after_lost_answer_rotates_exactly_once(
    server: ServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _client(server) as admin:
        original = await admin.generate(key_alias="rotate-once")

    dropper = _DropFirstResponse("Regenerate")
    async with _client(server, interceptors=[dropper]) as client:
        rotated = await client.regenerate(original.secret, max_budget=50)

    # The first answer was lost after the server rotated; the retry carried
    # the same idempotency key and got the first rotation's answer back.
    assert len(dropper.attempts) == 2
    first, second = (a.get("idempotency-key") for a in dropper.attempts)
    assert first and first == second
    async with _client(server) as admin:
        info = await admin.info(rotated.token_id)
        assert info.rotation_count == 1
        assert info.max_budget == 50
        assert (await admin.verify(rotated.secret)).valid
        assert not (await admin.verify(original.secret)).valid

    assert any("retrying" in r.getMessage() for r in caplog.records)
    for secret in (original.secret.reveal(), rotated.secret.reveal()):
        assert secret not in caplog.text


class _LostAnswer(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What the blocking stub raises for a connection reset mid-call."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection reset by test interceptor"

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


class _DropFirstResponseSync(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, method: str) -> None:
        self.method = f"/keyservice.v1.KeyService/{method}"
        self.attempts: list[dict[str, str]] = []

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        outcome = continuation(client_call_details, request)
        if client_call_details.method != self.method:
            return outcome
        self.attempts.append(dict(client_call_details.metadata or ()))
        if len(self.attempts) == 1:
            outcome.result()  # the server has processed the request
            raise _LostAnswer()
        return outcome


async def test_sync_regenerate_retried_after_lost_answer_rotates_exactly_once(
    server: ServerHandle,
) -> None:
    dropper = _DropFirstResponseSync("Regenerate")

    def scenario() -> None:
        with KeyClient(server.address, api_key=server.master_key) as admin:
            original = admin.generate(key_alias="sync-rotate-once")
        with KeyClient(
            server.address,
            api_key=server.master_key,
            retry=FAST_RETRY,
            interceptors=[dropper],
        ) as client:
            rotated = client.regenerate(original.secret, idempotency_key="fixed-1")
            info = client.info(rotated.token_id)
            assert info.rotation_count == 1
            assert client.verify(rotated.secret).valid
            assert not client.verify(original.secret).valid

    await asyncio.to_thread(scenario)
    assert [a.get("idempotency-key") for a in dropper.attempts] == ["fixed-1"] * 2


async def test_delete_is_not_retried(server: ServerHandle) -> None:
    failing = _AlwaysUnavailable()
    async with _client(server, interceptors=[failing]) as client:
        with pytest.raises(UnavailableError):
            await client.delete(["sk-" + "y" * 40])
    assert failing.calls == 1


async def test_generate_retried_after_lost_answer_creates_one_key(
    server: ServerHandle,
) -> None:
    dropper = _DropFirstResponse("Generate")
    async with _client(server, interceptors=[dropper]) as client:
        issued = await client.generate(key_alias="created-once")

    assert len(dropper.attempts) == 2
    first, second = (a.get("idempotency-key") for a in dropper.attempts)
    assert first and first == second
    async with _client(server) as admin:
        page = await admin.list_keys(key_alias="created-once")
        assert page.total_count == 1
        assert (await admin.verify(issued.secret)).valid


async def test_safe_calls_are_retried_up_to_the_policy(server: ServerHandle) -> None:
    failing = _AlwaysUnavailable()
    async with _client(server, interceptors=[failing]) as client:
        with pytest.raises(UnavailableError):
            await client.verify("sk-" + "z" * 40)
    assert failing.calls == FAST_RETRY.max_attempts


async def test_deadline_covers_the_whole_call(server: ServerHandle) -> None:
    # A deadline that has already passed fails at once, without a retry.
    failing = _AlwaysUnavailable()
    async with _client(server, interceptors=[failing]) as client:
        with pytest.raises(UnavailableError):
            await client.info("sk-" + "q" * 40, timeout=0)
    assert failing.calls == 1


async def test_no_secret_in_any_repr_or_log(
    server: ServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _client(server) as client:
        issued = await client.generate(key_alias="quiet")
        rotated = await client.regenerate(issued.secret)
        shown = [
            repr(client),
            repr(issued),
            str(issued),
            repr(rotated),
            repr(rotated.key),
            repr(await client.verify(rotated.secret)),
            repr(await client.info(rotated.secret)),
        ]
        logging.getLogger("test").info("client %s issued %s", client, issued)
    for secret in (server.master_key, issued.secret.reveal(), rotated.secret.reveal()):
        for text in [*shown, caplog.text]:
            assert secret not in text
    assert str(rotated.secret).endswith(rotated.secret.reveal()[-4:])


def test_settings_are_checked_before_the_call() -> None:
    client = KeyClient("127.0.0.1:1")
    with client, pytest.raises(TypeError, match="grace_period"):
        client.update("sk-anything", grace_period="1h")  # type: ignore[call-arg]
    assert repr(Secret("sk-abcdefghijklmnop")) == "Secret('sk-...mnop')"


def test_the_built_wheel_marks_keyclient_as_typed(tmp_path: pathlib.Path) -> None:
    # Without keyclient/py.typed in the wheel, mypy ignores the clients' hints
    # in every project that installs them. The build runs on a copy, so it
    # leaves no build/ or egg-info behind in the checkout.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules")
    for name in ("gen/python", "server", "clients/python"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)

    run = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"), "."),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = (tmp_path / "dist").glob("keyservice-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "keyclient/py.typed" in names
    assert "keyserver/py.typed" in names


async def test_info_keeps_the_token_id_that_info_response_carries(
    server: ServerHandle, stub: key_service_pb2_grpc.KeyServiceStub
) -> None:
    # info() returns InfoResponse.info alone; InfoResponse.key, the token id of
    # the key described, must be in it, for a named key and for the caller's.
    async with _client(server) as admin:
        issued = await admin.generate(key_alias="described")
        named = await admin.info(issued.secret)
    async with _client(server, api_key=issued.secret) as itself:
        own = await itself.info()

    for request_key, shown in ((issued.secret.reveal(), named), ("", own)):
        response = await stub.Info(
            key_service_pb2.InfoRequest(key=request_key),
            metadata=bearer(issued.secret.reveal()),
        )
        assert response.key == issued.token_id
        assert shown.token_id == response.key
        assert shown.key == response.key


class _NoteUnavailable(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Passes calls through; sets `failed` when an attempt gets UNAVAILABLE."""

    def __init__(self) -> None:
        self.failed = asyncio.Event()
        self.attempts: list[dict[str, str]] = []

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        self.attempts.append(dict(client_call_details.metadata or ()))
        call = await continuation(client_call_details, request)
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                self.failed.set()
        return call


async def _until_first_failure(failed: asyncio.Event, call: asyncio.Task[Any]) -> None:
    """Wait until `call` has met the stopped server, and fail if it never does."""
    noted = asyncio.ensure_future(failed.wait())
    await asyncio.wait({noted, call}, return_when=asyncio.FIRST_COMPLETED)
    noted.cancel()
    assert failed.is_set(), f"the call ended without an UNAVAILABLE attempt: {call}"


@contextlib.asynccontextmanager
async def _serving(
    database_url: str, data_dir: pathlib.Path, port: int = 0
) -> AsyncIterator[app.RunningServer]:
    """A server of its own, for tests that stop one and start another."""
    settings = Settings(
        data_dir=data_dir, listen=f"127.0.0.1:{port}", database_url=database_url
    )
    running = await app.start(settings)
    try:
        yield running
    finally:
        await running.stop(grace=0)


async def test_regenerate_reaches_a_server_restarted_on_the_same_port(
    database_url: str, tmp_path: pathlib.Path
) -> None:
    data_dir = tmp_path / "data"
    async with _serving(database_url, data_dir) as first:
        port = first.port
        master_key = (data_dir / "master_key").read_text().strip()
        async with AsyncKeyClient(first.address, api_key=master_key) as admin:
            original = await admin.generate(key_alias="restarted")

    # The new server starts only after the call has met the stopped one, so
    # the first attempt fails and the retries must find the new server.
    watcher = _NoteUnavailable()
    async with AsyncKeyClient(
        f"127.0.0.1:{port}", api_key=master_key, interceptors=[watcher]
    ) as client:
        call = asyncio.create_task(client.regenerate(original.secret, max_budget=5))
        await _until_first_failure(watcher.failed, call)
        async with _serving(database_url, data_dir, port):
            rotated = await call

            assert len(watcher.attempts) >= 2
            sent = {attempt.get("idempotency-key") for attempt in watcher.attempts}
            assert len(sent) == 1 and None not in sent
            info = await client.info(rotated.token_id)
            assert (info.rotation_count, info.max_budget) == (1, 5)
            assert (await client.verify(rotated.secret)).valid
            assert not (await client.verify(original.secret)).valid


class _NoteUnavailableSync(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """The blocking client's _NoteUnavailable: tells the server's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.failed = asyncio.Event()
        self.attempts = 0

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        self.attempts += 1
        outcome = continuation(client_call_details, request)
        if outcome.code() == grpc.StatusCode.UNAVAILABLE:
            self.loop.call_soon_threadsafe(self.failed.set)
        return outcome


async def test_sync_client_reaches_a_server_restarted_on_the_same_port(
    database_url: str, tmp_path: pathlib.Path
) -> None:
    data_dir = tmp_path / "data"
    async with _serving(database_url, data_dir) as first:
        port = first.port
        master_key = (data_dir / "master_key").read_text().strip()
        async with AsyncKeyClient(first.address, api_key=master_key) as admin:
            original = await admin.generate(key_alias="restarted-sync")

    watcher = _NoteUnavailableSync(asyncio.get_running_loop())

    def scenario() -> str:
        with KeyClient(
            f"127.0.0.1:{port}", api_key=master_key, interceptors=[watcher]
        ) as client:
            return client.verify(original.secret).reason

    # The server runs on this loop, so the blocking client runs in a thread.
    call = asyncio.create_task(asyncio.to_thread(scenario))
    await _until_first_failure(watcher.failed, call)
    async with _serving(database_url, data_dir, port):
        assert await call == "OK"
    assert watcher.attempts >= 2


@pytest.mark.parametrize(
    "api_key", ["sk-ünïcode-master-key-0001", "sk-with space 000001"]
)
def test_an_api_key_grpc_cannot_send_is_refused_up_front(api_key: str) -> None:
    for client_class in (AsyncKeyClient, KeyClient):
        with pytest.raises(ValueError, match="printable ASCII") as refused:
            client_class("127.0.0.1:1", api_key=api_key)
        assert api_key not in str(refused.value)
