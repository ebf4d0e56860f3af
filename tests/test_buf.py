"""buf keeps the contract honest: lint and breaking-change detection."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

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


_RECORDING_PLUGIN = """\
#!{python}
# Stands in for a real plugin: answers with one file that lists, for each file
# to generate, its name and the go_package/java_package it was given.
import sys
from google.protobuf.compiler import plugin_pb2

request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
by_name = {{f.name: f for f in request.proto_file}}
lines = [
    f"{{name}} {{by_name[name].options.go_package}}"
    for name in request.file_to_generate
]
response = plugin_pb2.CodeGeneratorResponse(supported_features=1)
response.file.add(name="{name}.txt", content="\\n".join(lines) + "\\n")
sys.stdout.buffer.write(response.SerializeToString())
"""


def test_the_go_template_in_the_readme_generates_our_files_only(
    buf: str, tmp_path: pathlib.Path
) -> None:
    # protoc-gen-go is not installed in CI; recording stand-ins check what buf
    # hands the real plugins.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("protoc-gen-go", "protoc-gen-go-grpc"):
        plugin = bin_dir / name
        plugin.write_text(_RECORDING_PLUGIN.format(python=sys.executable, name=name))
        plugin.chmod(0o755)
    workdir = tmp_path / "checkout"
    shutil.copytree(PROTO, workdir / "proto")

    run = subprocess.run(
        [
            buf,
            "generate",
            "proto",
            "--template",
            "proto/buf.gen.go.yaml",
            "--path",
            "proto/keyservice",
        ],
        cwd=workdir,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr
    go_package = "example.com/yourteam/gen/go/keyservice/v1;keyservicev1"
    for name in ("protoc-gen-go", "protoc-gen-go-grpc"):
        lines = (workdir / "gen" / "go" / f"{name}.txt").read_text().splitlines()
        assert lines == [
            f"keyservice/v1/key.proto {go_package}",
            f"keyservice/v1/key_service.proto {go_package}",
        ]


def test_the_protoc_include_paths_in_the_readme_compile(tmp_path: pathlib.Path) -> None:
    # The README's protoc commands use `-I proto -I proto/third_party/googleapis`;
    # grpcio-tools bundles the same compiler (without the Go and Java outputs).
    import grpc_tools
    from grpc_tools import protoc

    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{PROTO / 'third_party' / 'googleapis'}",
        f"-I{well_known}",
        f"--descriptor_set_out={tmp_path / 'out.binpb'}",
        str(PROTO / "keyservice" / "v1" / "key.proto"),
        str(PROTO / "keyservice" / "v1" / "key_service.proto"),
    ]
    assert protoc.main(args) == 0
