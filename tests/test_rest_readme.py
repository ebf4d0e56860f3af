"""`make run` as a newcomer runs it: a reflection client finds the service and
rotates a key with the master key the first start wrote, and the README's curl
commands work exactly as printed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import sys
from typing import Any

import grpc
import pytest
from support import ReflectionClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Calling it over REST (curl through Envoy)"
# gRPC, REST and Envoy's admin interface, as make run binds them.
PORTS = (50051, 4000, 9901)
START_TIMEOUT_S = 90.0
SERVICE = "keyservice.v1.KeyService"


def readme_commands() -> str:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    blocks = re.findall(r"```sh\n(.*?)```", text[start:end], re.DOTALL)
    assert blocks, "the REST section has no sh blocks"
    return "\n".join(blocks)


def json_documents(text: str) -> list[Any]:
    """The JSON documents that curl printed one after the other."""
    decoder = json.JSONDecoder()
    documents, at = [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _read(path: pathlib.Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def _wait_for(log: pathlib.Path, process: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while "Ctrl-C stops both" not in _read(log):  # printed by run_dev.sh
        assert process.returncode is None, _read(log)
        assert loop.time() < deadline, _read(log)
        # Polls the script's start-up, not a timing assumption of the test.
        await asyncio.sleep(0.1)


def rotate_by_reflection(master_key: str) -> dict[str, Any]:
    """What the README's grpcurl lines do, with grpcio-reflection: list the
    services, then Generate and Regenerate with the master key."""
    auth = (("authorization", f"Bearer {master_key}"),)
    with grpc.insecure_channel("127.0.0.1:50051") as channel:
        client = ReflectionClient(channel, SERVICE)
        assert SERVICE in client.services()
        created = client.call("Generate", {"key_alias": "found-by-reflection"}, auth)
        return client.call("Regenerate", {"key": created["key"]["key"]}, auth)


async def test_make_run_serves_the_readme_commands_and_stops_on_ctrl_c(
    tmp_path: pathlib.Path,
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the README's commands need curl")
    busy = [port for port in PORTS if port_in_use(port)]
    if busy:
        pytest.skip(f"make run's ports are in use here: {busy}")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("KEYSERVICE_")
    }
    env.update(VENV=str(pathlib.Path(sys.executable).parent.parent))
    env.update(DATA_DIR=str(tmp_path / "data"))
    log = tmp_path / "run_dev.log"

    with log.open("wb") as out:
        # A session of its own, so Ctrl-C can go to the whole group, as a
        # terminal sends it.
        run = await asyncio.create_subprocess_exec(
            "make",
            "--no-print-directory",
            "run",
            f"VENV={env['VENV']}",
            f"DATA_DIR={env['DATA_DIR']}",
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await _wait_for(log, run)
        master_key = (tmp_path / "data" / "master_key").read_text().strip()
        rotated = await asyncio.to_thread(rotate_by_reflection, master_key)
        curl = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            readme_commands(),
            env={**env, "MASTER_KEY": master_key},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        output = (await curl.communicate())[0].decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGINT)
        await asyncio.wait_for(run.wait(), 30)

    assert rotated["key"]["key_alias"] == "found-by-reflection"
    assert rotated["key"]["rotation_count"] == 1
    assert curl.returncode == 0, output
    answers = json_documents(output)
    regenerated = answers[1]
    assert regenerated["max_budget"] == 100
    assert regenerated["metadata"] == {"team": "core-infra"}
    assert regenerated["models"] == ["gpt-4", "gpt-3.5-turbo"]
    assert regenerated["key"] != "sk-legacy-example-key-0001"
    errors = [answer for answer in answers if "error" in answer]
    assert [error["error"]["code"] for error in errors] == ["409"], output
    assert answers[-1] == {"deleted_keys": [regenerated["token_id"]]}
    # Ctrl-C stopped the server and Envoy, not only the script.
    assert run.returncode is not None
    assert [port for port in PORTS if port_in_use(port)] == [], _read(log)
