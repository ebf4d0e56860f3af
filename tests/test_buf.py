"""buf keeps the contract honest: lint and breaking-change detection."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROTO = ROOT / "proto"
# Installed from npm by `make node-deps` (pinned in clients/ts/package-lock.json).
BUF = ROOT / "clients" / "ts" / "node_modules" / ".bin" / "buf"


@pytest.fixture(scope="module")
def buf() -> str:
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: run `make node-deps`")
    return str(BUF)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.fixture
def proto_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "proto"
    shutil.copytree(PROTO, copy)
    return copy


def _edit(path: pathlib.Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {path.name}"
    path.write_text(text.replace(old, new))


def test_the_contract_passes_lint(buf: str) -> None:
    run = _run(buf, "lint", str(PROTO))
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_unchanged_contract_is_not_breaking(
    buf: str, proto_copy: pathlib.Path
) -> None:
    run = _run(buf, "breaking", str(proto_copy), "--against", str(PROTO))
    assert run.returncode == 0, run.stdout + run.stderr


def test_renumbering_a_field_is_a_breaking_change(
    buf: str, proto_copy: pathlib.Path
) -> None:
    _edit(
        proto_copy / "keyservice" / "v1" / "key_service.proto",
        "optional string grace_period = 23;",
        "optional string grace_period = 25;",
    )

    run = _run(buf, "breaking", str(proto_copy), "--against", str(PROTO))

    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "grace_period" in output
    assert "RegenerateRequest" in output


def test_an_uncommented_field_fails_lint(buf: str, proto_copy: pathlib.Path) -> None:
    _edit(
        proto_copy / "keyservice" / "v1" / "key_service.proto",
        "  // Optional. How long the old secret keeps working, in the units of\n"
        "  // `duration`. Unsent, the old secret stops working at once.\n",
        "",
    )

    run = _run(buf, "lint", str(proto_copy))

    assert run.returncode != 0
    assert 'Field "grace_period" should have a non-empty comment' in run.stdout
