"""The TypeScript client (clients/ts) against a live server, under Node."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil

import pytest

from tests.conftest import ServerHandle

TS = pathlib.Path(__file__).resolve().parents[1] / "clients" / "ts"


@pytest.fixture
def backend() -> str:
    # The TypeScript client is under test; the server's own tests cover both
    # databases.
    return "sqlite"


@pytest.fixture
def npm() -> str:
    found = shutil.which("npm")
    if found is None or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the TypeScript client's tests: install Node 20+")
        pytest.skip("node and npm are not installed; the TypeScript client needs them")
    if not (TS / "node_modules" / ".bin" / "tsc").exists():
        pytest.fail(f"{TS}/node_modules is missing: run `make node-deps`")
    return found


async def test_typescript_client_passes_its_tests_against_a_live_server(
    server: ServerHandle, npm: str
) -> None:
    env = dict(os.environ)
    env["KEYSERVICE_TARGET"] = server.address
    env["KEYSERVICE_API_KEY"] = server.master_key
    # The server runs on this event loop, so npm must not block it.
    process = await asyncio.create_subprocess_exec(
        npm,
        "test",
        cwd=TS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")

    assert process.returncode == 0, text
    # node --test's summary: every test ran and passed.
    assert "# fail 0" in text, text
    assert "# pass 8" in text, text
