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
MAKEFILE = ROOT / "Makefile"
BASELINE = ROOT / ".ci" / "proto-v1.tar.gz"
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


def _git(cwd: pathlib.Path, *args: str) -> str:
    run = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return run.stdout


def _scratch_clone(tmp_path: pathlib.Path, *clone_args: str) -> pathlib.Path:
    """A clone of this repository's HEAD, with the working tree's Makefile and
    v1 baseline.

    They are the ones under test, so they are copied in uncommitted; the
    commits a test makes name their paths and leave them out.
    """
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "--quiet", *clone_args, ROOT.as_uri(), str(clone))
    shutil.copy(MAKEFILE, clone / "Makefile")
    shutil.copy(BASELINE, clone / BASELINE.relative_to(ROOT))
    return clone


def _proto_check(
    clone: pathlib.Path, buf: str, *, ci: bool
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "1"
    return subprocess.run(
        # The clone has no node_modules: -o keeps make from installing them,
        # and BUF points at this checkout's buf.
        [
            *("make", "--no-print-directory", "proto-check", f"BUF={buf}"),
            *("-o", "clients/ts/node_modules/.installed"),
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_proto_check_fails_on_a_breaking_commit_followed_by_a_harmless_one(
    buf: str, tmp_path: pathlib.Path
) -> None:
    # The breaking change is not in the last commit, so comparing with HEAD~1
    # alone would pass; the v1 baseline must catch it.
    clone = _scratch_clone(tmp_path)
    service = clone / "proto" / "keyservice" / "v1" / "key_service.proto"
    _edit(
        service,
        "optional string grace_period = 23;",
        "optional string grace_period = 25;",
    )
    _git(clone, "commit", "--quiet", "-m", "Renumber a field", str(service))
    key = clone / "proto" / "keyservice" / "v1" / "key.proto"
    key.write_text(key.read_text() + "// A comment: no change to the contract.\n")
    _git(clone, "commit", "--quiet", "-m", "Add a comment", str(key))

    run = _proto_check(clone, buf, ci=True)

    assert run.returncode != 0, run.stdout + run.stderr
    # The baseline's comparison failed, so the one with HEAD~1 never ran.
    assert "--against '.ci/proto-v1.tar.gz#subdir=proto'" in run.stdout
    assert "ref=HEAD~1" not in run.stdout
    assert "grace_period" in run.stdout + run.stderr


def test_proto_check_in_a_shallow_clone_still_holds_the_contract_to_v1(
    buf: str, tmp_path: pathlib.Path
) -> None:
    clone = _scratch_clone(tmp_path, "--depth", "1")

    unchanged = _proto_check(clone, buf, ci=True)
    service = clone / "proto" / "keyservice" / "v1" / "key_service.proto"
    _edit(service, "optional string new_key = 24;", "optional string new_key = 26;")
    broken = _proto_check(clone, buf, ci=True)

    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "against HEAD~1 skipped" in unchanged.stdout
    assert broken.returncode != 0
    assert "new_key" in broken.stdout + broken.stderr


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
