"""keyctl, the installed console script, against a live server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import signal
import sys
from typing import Any

import grpc
import pytest

from keyclient import KeyClient, SettingError, cli
from tests.conftest import ServerHandle

# pyproject.toml installs keyctl next to the interpreter running the tests.
KEYCTL = pathlib.Path(sys.executable).parent / "keyctl"


@pytest.fixture
def backend() -> str:
    # keyctl is what is under test; the server's own tests cover both databases.
    return "sqlite"


@dataclasses.dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def _env(target: str, api_key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSERVICE_")}
    env["KEYSERVICE_TARGET"] = target
    if api_key is not None:
        env["KEYSERVICE_API_KEY"] = api_key
    return env


async def keyctl(
    target: str,
    *args: str,
    api_key: str | None = None,
    stdin: str | bytes | None = None,
) -> Run:
    env = _env(target, api_key)
    # The server runs on this event loop, so keyctl must not block it.
    process = await asyncio.create_subprocess_exec(
        str(KEYCTL),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    if isinstance(stdin, str):
        stdin = stdin.encode()
    out, err = await process.communicate(stdin or b"")
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def admin(server: ServerHandle, *args: str, stdin: str | None = None) -> Run:
    return await keyctl(server.address, *args, api_key=server.master_key, stdin=stdin)


def test_keyctl_is_installed_as_a_console_script() -> None:
    assert KEYCTL.exists(), "pip install -e . should have installed keyctl"


async def test_generate_prints_the_new_secret_once_and_clearly(
    server: ServerHandle,
) -> None:
    run = await admin(server, "generate", "--key-alias", "human", "--tags", "a,b")
    assert run.code == 0, run.err

    lines = run.out.splitlines()
    assert "shown this once" in lines[0]
    secret = lines[2].strip()
    assert secret.startswith("sk-")
    assert run.out.count(secret) == 1
    assert any(line.split()[:2] == ["key_alias", "human"] for line in lines)


async def test_every_subcommand_with_json_output(server: ServerHandle) -> None:
    generated = await admin(
        server,
        "--json",
        "generate",
        "--key-alias",
        "svc",
        "--team-id",
        "core-infra",
        "--max-budget",
        "10",
        "--model-rpm-limit",
        "gpt-4o=5",
    )
    assert generated.code == 0, generated.err
    key = generated.json()
    secret = key["key"]
    assert secret.startswith("sk-")
    assert key["model_rpm_limit"] == {"gpt-4o": 5}

    rotated = await admin(
        server,
        "--json",
        "regenerate",
        secret,
        "--max-budget",
        "100",
        "--metadata",
        "team=core-infra",
        "--metadata",
        "tier=2",
        "--grace-period",
        "24h",
    )
    assert rotated.code == 0, rotated.err
    new = rotated.json()
    assert new["id"] == key["id"]
    assert new["max_budget"] == 100
    assert new["metadata"] == {"team": "core-infra", "tier": 2}
    assert new["key"] != secret

    old_verdict = await admin(server, "--json", "verify", "-", stdin=secret + "\n")
    assert old_verdict.code == 0
    assert old_verdict.json()["in_grace_period"] is True
    new_verdict = await admin(server, "--json", "verify", new["key"])
    assert (new_verdict.code, new_verdict.json()["reason"]) == (0, "OK")

    info = await admin(server, "--json", "info", new["token_id"])
    assert info.json()["rotation_count"] == 1
    assert info.json()["key"] == new["token_id"]

    updated = await admin(
        server, "--json", "update", new["token_id"], "--rpm-limit", "9"
    )
    assert updated.json()["rpm_limit"] == 9

    listed = await admin(server, "--json", "list", "--team-id", "core-infra", "--full")
    page = listed.json()
    assert page["total_count"] == 1
    assert page["keys"][0]["token_id"] == new["token_id"]

    blocked = await admin(server, "--json", "block", new["token_id"])
    assert blocked.json()["blocked"] is True
    refused = await admin(server, "--json", "verify", new["key"])
    assert (refused.code, refused.json()["reason"]) == (1, "BLOCKED")
    unblocked = await admin(server, "--json", "unblock", new["token_id"])
    assert unblocked.json().get("blocked", False) is False

    deleted = await admin(server, "--json", "delete", new["token_id"])
    assert deleted.json() == {"deleted_keys": [new["token_id"]]}
    assert (await admin(server, "info", new["token_id"])).code == 3


async def test_human_output_of_the_other_subcommands(server: ServerHandle) -> None:
    generated = (await admin(server, "--json", "generate", "--key-alias", "h")).json()
    token_id = generated["token_id"]

    listed = await admin(server, "list")
    assert listed.out.splitlines() == [token_id, "page 1 of 1, 1 keys"]
    info = await admin(server, "info", token_id)
    assert ["token_id", token_id] in [line.split() for line in info.out.splitlines()]
    assert generated["key"] not in info.out
    verdict = await admin(server, "verify", generated["key"])
    assert verdict.out.startswith("valid: OK")
    deleted = await admin(server, "delete", "--alias", "h")
    assert deleted.out.splitlines() == ["deleted 1 key(s)", token_id]


async def test_regenerate_repeated_with_one_idempotency_key_rotates_once(
    server: ServerHandle,
) -> None:
    secret = (await admin(server, "--json", "generate")).json()["key"]
    args = ("--json", "regenerate", secret, "--idempotency-key", "deploy-42")

    first = await admin(server, *args)
    again = await admin(server, *args)

    assert (first.code, again.code) == (0, 0), first.err + again.err
    assert again.json()["key"] == first.json()["key"]
    assert again.json()["rotation_count"] == 1


@pytest.mark.parametrize(
    ("case", "expected_code", "expected_type"),
    [
        ("not_found", 3, "not_found_error"),
        ("unauthenticated", 4, "auth_error"),
        ("permission_denied", 5, "permission_error"),
        ("invalid_argument", 6, "invalid_request_error"),
        ("conflict", 7, "conflict_error"),
    ],
)
async def test_exit_codes_name_the_failure(
    server: ServerHandle, case: str, expected_code: int, expected_type: str
) -> None:
    owned = (await admin(server, "--json", "generate")).json()
    argv: dict[str, tuple[str | None, list[str]]] = {
        "not_found": (server.master_key, ["info", "sk-" + "n" * 40]),
        "unauthenticated": (None, ["info", owned["token_id"]]),
        "permission_denied": (
            owned["key"],
            ["update", owned["token_id"], "--spend", "1"],
        ),
        "invalid_argument": (server.master_key, ["generate", "--max-budget", "-1"]),
        "conflict": (server.master_key, ["generate", "--key", owned["key"]]),
    }
    api_key, args = argv[case]

    run = await keyctl(server.address, "--json", *args, api_key=api_key)

    assert run.code == expected_code, run.err
    error = json.loads(run.err)["error"]
    assert error["type"] == expected_type
    assert error["message"]
    assert owned["key"] not in run.err
    human = await keyctl(server.address, *args, api_key=api_key)
    assert human.code == expected_code
    assert human.err.startswith(f"keyctl: {expected_type}: ")


async def test_unreachable_server_exits_8_at_the_deadline(unused_tcp_port: int) -> None:
    # The retries wait for a server until --timeout, so the call ends with
    # DEADLINE_EXCEEDED and names the refused connection that came first.
    run = await keyctl(f"127.0.0.1:{unused_tcp_port}", "--timeout", "1", "list")
    assert run.code == 8
    assert run.err.startswith("keyctl: deadline_exceeded: ")
    assert "the attempt before was UNAVAILABLE: " in run.err


async def test_bad_command_line_exits_2(server: ServerHandle) -> None:
    assert (await admin(server, "regenerate")).code == 2
    assert (await admin(server, "generate", "--metadata", "no-equals")).code == 2


# Python hands keyctl a command-line byte that is not UTF-8 as a lone surrogate,
# and turns it back into the byte when it starts a process.
NOT_UTF8 = os.fsdecode(b"\xff")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "--rpm-limit", "99999999999"], "from 0 to 2147483647"),
        (["generate", "--tpm-limit", "-1"], "from 0 to 2147483647"),
        (["update", "k", "--max-parallel-requests", "2147483648"], "2147483647"),
        (["list", "--size", "4294967296"], "from 0 to 2147483647"),
        (["generate", "--max-budget", "inf"], "must be a finite number"),
        (["--timeout", "0", "list"], "must be greater than 0"),
        (["list", "--timeout", "-1"], "must be greater than 0"),
        (["generate", "--metadata", "x=NaN"], "NaN is not a JSON value"),
        (["generate", "--permissions", 'p={"a":-Infinity}'], "-Infinity is not"),
        (["generate", "--metadata", "x=1e999"], "1e999 is not a JSON value"),
        (["verify", NOT_UTF8], "KEY is not valid UTF-8 text"),
        (["generate", "--key-alias", "a" + NOT_UTF8], "--key-alias is not valid"),
        (["--api-key", "sk-\u00fc", "list"], "the API key must be ASCII text"),
    ],
)
async def test_values_that_cannot_be_sent_are_usage_errors_without_a_traceback(
    unused_tcp_port: int, argv: list[str], message: str
) -> None:
    # Refused before any call: nothing listens on the target.
    run = await keyctl(f"127.0.0.1:{unused_tcp_port}", *argv)

    assert run.code == 2, run.err
    assert message in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"\xffsk-secret\n", "the key on standard input is not valid UTF-8"),
        (b"\n", "no key on standard input"),
    ],
)
async def test_a_key_on_standard_input_that_cannot_be_sent_is_a_usage_error(
    unused_tcp_port: int, stdin: bytes, message: str
) -> None:
    run = await keyctl(f"127.0.0.1:{unused_tcp_port}", "verify", "-", stdin=stdin)

    assert run.code == 2, run.err
    assert message in run.err
    assert "Traceback" not in run.err


async def test_int32_flags_take_the_largest_int32(server: ServerHandle) -> None:
    run = await admin(server, "--json", "generate", "--rpm-limit", "2147483647")
    assert run.code == 0, run.err
    assert run.json()["rpm_limit"] == 2147483647


async def test_global_options_work_after_the_command(server: ServerHandle) -> None:
    await admin(server, "generate", "--key-alias", "after")
    # The environment names a port where nothing listens; the flags after the
    # command must win over it, and --json before the command must survive.
    wrong = "127.0.0.1:1"
    run = await keyctl(
        wrong,
        "list",
        "--json",
        "--target",
        server.address,
        "--api-key",
        server.master_key,
        "--timeout",
        "5",
    )
    assert run.code == 0, run.err
    assert run.json()["total_count"] == 1

    mixed = await keyctl(
        wrong, "--json", "list", "--target", server.address, api_key=server.master_key
    )
    assert mixed.code == 0, mixed.err
    assert mixed.json()["total_count"] == 1


async def test_closed_standard_output_exits_quietly(server: ServerHandle) -> None:
    # `keyctl ... | head -c1`, without the race: the reading end is closed
    # before keyctl writes anything.
    await admin(server, "generate")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = await asyncio.create_subprocess_exec(
            str(KEYCTL),
            "--json",
            "list",
            "--full",
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
            env=_env(server.address, server.master_key),
        )
    finally:
        os.close(write_end)
    _, err = await process.communicate()

    assert process.returncode == 141
    assert err == b""


class _HeldList:
    """A stand-in KeyService whose List never answers, and says when called."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def list(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.called.set()
        await asyncio.Event().wait()  # cancelled when the server stops
        return b""


async def test_ctrl_c_exits_130_without_a_traceback() -> None:
    held = _HeldList()
    fake = grpc.aio.server()
    fake.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "keyservice.v1.KeyService",
                {"List": grpc.unary_unary_rpc_method_handler(held.list)},
            )
        ]
    )
    port = fake.add_insecure_port("127.0.0.1:0")
    await fake.start()
    try:
        process = await asyncio.create_subprocess_exec(
            str(KEYCTL),
            "list",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(f"127.0.0.1:{port}", "sk-caller"),
        )
        # Interrupt keyctl only once its call is in flight, so the signal
        # meets main() and not the interpreter's start-up.
        called = asyncio.ensure_future(held.called.wait())
        exited = asyncio.ensure_future(process.wait())
        await asyncio.wait({called, exited}, return_when=asyncio.FIRST_COMPLETED)
        assert held.called.is_set(), "keyctl exited before calling List"
        process.send_signal(signal.SIGINT)
        _, err = await process.communicate()
    finally:
        await fake.stop(0)

    assert process.returncode == 130
    assert b"Traceback" not in err


@pytest.mark.parametrize(
    "command", ["regenerate", "update", "info", "delete", "block", "unblock", "verify"]
)
def test_help_of_commands_that_take_a_key_says_dash_reads_standard_input(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])

    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "- reads it from standard input" in help_text or (
        "each - reads one line of standard input" in help_text
    )


def test_an_unknown_setting_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(self: KeyClient, **kwargs: Any) -> None:
        raise SettingError("ListRequest takes no setting 'colour'")

    monkeypatch.setattr(KeyClient, "list_keys", refuse)

    with pytest.raises(SystemExit) as exited:
        cli.main(["--target", "127.0.0.1:1", "list"])

    assert exited.value.code == 2
    assert "takes no setting 'colour'" in capsys.readouterr().err


def test_a_type_error_from_a_bug_is_not_reported_as_a_bad_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the client's own SettingError means "bad command line"; any other
    # TypeError is a bug and must keep its traceback.
    def broken(self: KeyClient, **kwargs: Any) -> None:
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(KeyClient, "list_keys", broken)

    with pytest.raises(TypeError, match="unsupported operand"):
        cli.main(["--target", "127.0.0.1:1", "list"])
