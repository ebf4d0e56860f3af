"""The `keyserver` command as a newcomer runs it: first start, reflection,
health, and graceful shutdown."""

from __future__ import annotations

import os
import pathlib
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import ReflectionClient

SERVICE = "keyservice.v1.KeyService"


class ServerProcess:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: pathlib.Path):
        self.process = process
        self.port = port
        self.log = log


def _wait_for_port(port_file: pathlib.Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("keyserver did not start serving")


@pytest.fixture
def server_process(tmp_path: pathlib.Path) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "data"
    port_file = tmp_path / "port"
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSERVICE_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keyserver",
                "serve",
                "--data-dir",
                str(data_dir),
                "--listen",
                "127.0.0.1:0",
                "--port-file",
                str(port_file),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield ServerProcess(process, _wait_for_port(port_file, process), log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_first_start_writes_a_private_master_key_and_logs_only_its_path(
    server_process: ServerProcess, tmp_path: pathlib.Path
) -> None:
    key_file = tmp_path / "data" / "master_key"
    master_key = key_file.read_text().strip()

    assert master_key.startswith("sk-")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "hash_secret").stat().st_mode) == 0o600
    log = server_process.log.read_text()
    assert str(key_file) in log
    assert master_key not in log


def test_reflection_client_lists_the_service_and_rotates_a_key(
    server_process: ServerProcess, tmp_path: pathlib.Path
) -> None:
    master_key = (tmp_path / "data" / "master_key").read_text().strip()
    auth = (("authorization", f"Bearer {master_key}"),)

    with grpc.insecure_channel(f"127.0.0.1:{server_process.port}") as channel:
        client = ReflectionClient(channel, SERVICE)
        assert SERVICE in client.services()
        created = client.call("Generate", {"key_alias": "from-reflection"}, auth)
        old = str(created["key"]["key"])
        rotated = client.call("Regenerate", {"key": old, "max_budget": 100}, auth)
        verdict = client.call("Verify", {"key": old}, auth)

    new_key = rotated["key"]
    assert new_key["key_alias"] == "from-reflection"
    assert new_key["max_budget"] == 100
    assert new_key["key"] != old
    assert verdict.get("valid", False) is False


def test_health_is_serving_and_sigterm_stops_cleanly(
    server_process: ServerProcess,
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server_process.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        response = health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert response.status == health_pb2.HealthCheckResponse.SERVING

    server_process.process.send_signal(signal.SIGTERM)

    assert server_process.process.wait(timeout=20) == 0
    assert "stopped" in server_process.log.read_text()
