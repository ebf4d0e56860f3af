"""keyctl: manage keyservice keys from a shell or a script.

The target and the caller's key come from --target / --api-key or from the
environment (KEYSERVICE_TARGET, default 127.0.0.1:50051; KEYSERVICE_API_KEY).
Prefer the environment for the key: command-line flags are visible to every
user of the machine in the process list. A KEY argument of `-` is read from
standard input, for the same reason.

Output is for people by default and one JSON document with --json. A new secret
(generate, regenerate) is printed once, on its own line, and nowhere else.

Exit codes:
  0  success (verify: the key may be used)
  1  verify: the key may not be used (unknown, expired, blocked, over budget)
  2  bad command line
  3  not found
  4  unauthenticated: no API key, or one the server does not accept
  5  permission denied
  6  invalid argument: the server refused a value
  7  conflict: secret already in use, concurrent rotation, idempotency key reuse
  8  unavailable: server unreachable or no answer before the deadline
  9  any other server error
130  interrupted (Ctrl-C)
141  standard output was closed early, as by `| head`; what a shell reports
     for a process that SIGPIPE ended
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from keyclient._base import DEFAULT_TARGET, DEFAULT_TIMEOUT
from keyclient._messages import (
    IssuedKey,
    KeyPage,
    SettingError,
    Verification,
    key_to_dict,
)
from keyclient.errors import (
    ConflictError,
    InvalidArgumentError,
    KeyServiceError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from keyclient.sync import KeyClient
from keyservice.v1 import key_pb2

EXIT_OK = 0
EXIT_KEY_NOT_VALID = 1
EXIT_USAGE = 2
EXIT_CODES: tuple[tuple[type[KeyServiceError], int], ...] = (
    (NotFoundError, 3),
    (UnauthenticatedError, 4),
    (PermissionDeniedError, 5),
    (InvalidArgumentError, 6),
    (ConflictError, 7),
    (UnavailableError, 8),
)
EXIT_OTHER_ERROR = 9
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE

# The largest value of the contract's int32 fields; the protobuf runtime
# refuses a larger one only when the request is built, with a traceback.
INT32_MAX = 2**31 - 1


def _int32(value: str) -> int:
    """A count or limit: an integer from 0 to INT32_MAX."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 0 <= number <= INT32_MAX:
        raise argparse.ArgumentTypeError(f"must be from 0 to {INT32_MAX}: {value}")
    return number


def _finite(value: str) -> float:
    """A number, but neither NaN nor infinite, which no setting can hold."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number: {value}")
    return number


def _positive(value: str) -> float:
    """A number of seconds greater than zero."""
    number = _finite(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {value}")
    return number


def _no_constant(name: str) -> NoReturn:
    # JSON has no NaN or Infinity: a setting that held one could not be shown
    # as JSON again, by `keyctl --json` or by the REST API.
    raise argparse.ArgumentTypeError(f"{name} is not a JSON value")


def _finite_json_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        _no_constant(text)
    return number


def _key_value_pairs(values: Sequence[str], what: str) -> dict[str, Any]:
    """`name=value` pairs; a value that parses as JSON is taken as JSON."""
    result: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"{what} wants NAME=VALUE, got {item!r}")
        try:
            result[name] = json.loads(
                raw, parse_constant=_no_constant, parse_float=_finite_json_float
            )
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{what} {name}: {exc}") from None
        except ValueError:
            result[name] = raw
    return result


def _list_arg(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _add_settings(parser: argparse.ArgumentParser, *, rotation: bool) -> None:
    group = parser.add_argument_group("key settings (unsent keeps the stored value)")
    add = group.add_argument
    add("--key-alias", help="a human-friendly name")
    add("--user-id", help="the user the key belongs to")
    add("--team-id", help="the team the key belongs to")
    add("--models", type=_list_arg, help="comma-separated model names ('' = all)")
    add("--tags", type=_list_arg, help="comma-separated tags")
    add("--spend", type=_finite, help="spend so far")
    add("--max-budget", type=_finite, help="spend at which the key is refused")
    add("--soft-budget", type=_finite, help="spend at which an alert is raised")
    add("--budget-duration", help="how often spend resets, such as 30d")
    add("--max-parallel-requests", type=_int32)
    add("--tpm-limit", type=_int32, help="tokens per minute")
    add("--rpm-limit", type=_int32, help="requests per minute")
    add("--duration", help="validity from now, such as 30d; -1 never expires")
    add(
        "--metadata",
        action="append",
        metavar="NAME=VALUE",
        help="repeatable; the whole metadata object is replaced",
    )
    add(
        "--permissions",
        action="append",
        metavar="NAME=VALUE",
        help="repeatable, e.g. manage_team_keys=true",
    )
    add(
        "--model-max-budget",
        action="append",
        metavar='MODEL={"budget_limit":N,"time_period":"30d"}',
    )
    add("--model-rpm-limit", action="append", metavar="MODEL=N")
    add("--model-tpm-limit", action="append", metavar="MODEL=N")
    add("--allowed-cache-controls", type=_list_arg, metavar="A,B")
    add("--guardrails", type=_list_arg, metavar="A,B")
    add("--blocked", action=argparse.BooleanOptionalAction)
    if rotation:
        add("--grace-period", help="how long the old secret keeps working, e.g. 24h")
        add(
            "--new-key",
            help="a caller-chosen replacement secret; - reads it from standard input",
        )
        add(
            "--idempotency-key",
            help="repeat a rotation safely; default: a fresh one per command",
        )
    else:
        add("--budget-id", help="a shared budget the key draws from")
        add("--enforced-params", type=_list_arg, metavar="A,B")


_MAPPINGS = (
    "metadata",
    "permissions",
    "model_max_budget",
    "model_rpm_limit",
    "model_tpm_limit",
)
_SETTINGS = (
    "key_alias",
    "user_id",
    "team_id",
    "models",
    "tags",
    "spend",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "duration",
    "allowed_cache_controls",
    "guardrails",
    "blocked",
    "grace_period",
    "budget_id",
    "enforced_params",
)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for name in _SETTINGS:
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
    for name in _MAPPINGS:
        pairs = getattr(args, name, None)
        if pairs is not None:
            settings[name] = _key_value_pairs(pairs, "--" + name.replace("_", "-"))
    if getattr(args, "new_key", None) is not None:
        settings["new_key"] = _read_key(args.new_key)
    return settings


def _read_key(value: str) -> str:
    """A KEY argument; `-` reads it from the next line of standard input."""
    if value != "-":
        return value
    try:
        line = sys.stdin.readline()
    except UnicodeDecodeError:
        raise argparse.ArgumentTypeError(
            "the key on standard input is not valid UTF-8 text"
        ) from None
    key = line.strip()
    if not key:
        raise argparse.ArgumentTypeError("no key on standard input")
    _check_text(key, "the key on standard input")
    return key


def _check_text(value: str, what: str) -> None:
    """Refuse text that cannot be sent, naming it but never showing it.

    Python keeps bytes of the command line that are not valid UTF-8 as lone
    surrogates, which no UTF-8 encoder takes.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{what} is not valid UTF-8 text") from None


def _check_arguments(args: argparse.Namespace, api_key: str | None) -> None:
    for name, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str):
                what = (
                    "KEY" if name in ("key", "keys") else "--" + name.replace("_", "-")
                )
                _check_text(item, what)
    if api_key is not None:
        _check_text(api_key, "the API key")
        # gRPC sends it in an ASCII-only header.
        if not api_key.isascii():
            raise argparse.ArgumentTypeError("the API key must be ASCII text")


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options of every command, before the command or after it.

    The root parser holds the defaults. Each command's parser leaves an
    option out of the result unless it is given (SUPPRESS), so an option
    given before the command is not reset by the command's parser.
    """

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("global options (before or after COMMAND)")
    group.add_argument(
        "--target",
        default=default(os.environ.get("KEYSERVICE_TARGET", DEFAULT_TARGET)),
        help="host:port of keyservice (env KEYSERVICE_TARGET, default "
        f"{os.environ.get('KEYSERVICE_TARGET', DEFAULT_TARGET)})",
    )
    group.add_argument(
        "--api-key",
        default=default(None),
        help="the caller's key; prefer the env var KEYSERVICE_API_KEY",
    )
    group.add_argument(
        "--timeout",
        type=_positive,
        default=default(DEFAULT_TIMEOUT),
        help="deadline of the call in seconds, retries included "
        f"(default {DEFAULT_TIMEOUT})",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print JSON for scripts",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log retries to stderr",
    )


KEY_HELP = "secret or token id; - reads it from standard input"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="keyctl",
        description="Manage keyservice keys.",
        epilog="Exit codes:" + (__doc__ or "").partition("Exit codes:")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(root, defaults=True)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        _add_global_options(sub, defaults=False)
        return sub

    generate = command("generate", "create a key")
    generate.add_argument(
        "--key", help="a caller-chosen secret; - reads it from standard input"
    )
    generate.add_argument(
        "--idempotency-key",
        help="repeat a creation safely; default: a fresh one per command",
    )
    _add_settings(generate, rotation=False)

    regenerate = command(
        "regenerate", "rotate a key's secret, optionally changing settings"
    )
    regenerate.add_argument("key", metavar="KEY", help=KEY_HELP)
    _add_settings(regenerate, rotation=True)

    update = command("update", "change a key's settings")
    update.add_argument("key", metavar="KEY", help=KEY_HELP)
    _add_settings(update, rotation=False)

    info = command("info", "show a key (default: your own)")
    info.add_argument("key", metavar="KEY", nargs="?", help=KEY_HELP)

    listing = command("list", "list keys, one page at a time")
    listing.add_argument("--page", type=_int32)
    listing.add_argument("--size", type=_int32, help="keys per page, 1 to 100")
    listing.add_argument("--user-id")
    listing.add_argument("--team-id")
    listing.add_argument("--organization-id")
    listing.add_argument("--key-hash", help="a token id")
    listing.add_argument("--key-alias")
    listing.add_argument("--full", action="store_true", help="whole key objects")
    listing.add_argument("--include-team-keys", action="store_true")
    listing.add_argument("--sort-by")
    listing.add_argument("--sort-order", choices=("asc", "desc"))

    delete = command("delete", "delete keys")
    delete.add_argument(
        "keys",
        metavar="KEY",
        nargs="*",
        help="secret or token id; each - reads one line of standard input",
    )
    delete.add_argument(
        "--alias", action="append", default=[], help="a key alias; repeatable"
    )

    for name, text in (
        ("block", "refuse a key until it is unblocked"),
        ("unblock", "let a blocked key be used again"),
        ("verify", "tell whether a secret may be used now (exit 0 or 1)"),
    ):
        command(name, text).add_argument("key", metavar="KEY", help=KEY_HELP)
    return root


class _Output:
    def __init__(self, as_json: bool, out: TextIO) -> None:
        self.as_json = as_json
        self.out = out

    def json(self, value: Any) -> None:
        json.dump(value, self.out, indent=2, sort_keys=True)
        self.out.write("\n")

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def key(self, key: key_pb2.Key) -> None:
        fields = key_to_dict(key)
        # `token` and, outside Generate/Regenerate, `key` repeat token_id.
        fields.pop("token", None)
        if fields.get("key") == fields.get("token_id"):
            fields.pop("key", None)
        width = max((len(name) for name in fields), default=0)
        for name, value in fields.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            self.line(f"{name:<{width}}  {shown}")


def _show_issued(output: _Output, issued: IssuedKey) -> None:
    if output.as_json:
        # The legacy key object: its `key` field carries the new secret.
        document = key_to_dict(issued.key)
        document["key"] = issued.secret.reveal()
        output.json(document)
        return
    output.line("New secret, shown this once; store it now:")
    output.line()
    output.line(f"    {issued.secret.reveal()}")
    output.line()
    output.key(issued.key)


def _show_key(output: _Output, key: key_pb2.Key) -> None:
    if output.as_json:
        output.json(key_to_dict(key))
    else:
        output.key(key)


def _show_page(output: _Output, page: KeyPage) -> None:
    if output.as_json:
        output.json(
            {
                "keys": page.keys,
                "total_count": page.total_count,
                "current_page": page.current_page,
                "total_pages": page.total_pages,
            }
        )
        return
    for item in page.keys:
        if isinstance(item, str):
            output.line(item)
        else:
            token_id = item.get("token_id", "")
            alias = item.get("key_alias") or "-"
            output.line(f"{token_id}  {item.get('key_name', '')}  {alias}")
    output.line(
        f"page {page.current_page} of {page.total_pages}, {page.total_count} keys"
    )


def _show_verification(output: _Output, result: Verification) -> None:
    if output.as_json:
        output.json(
            {
                "valid": result.valid,
                "reason": result.reason,
                "in_grace_period": result.in_grace_period,
                "info": key_to_dict(result.key) if result.key else None,
            }
        )
        return
    verdict = "valid" if result.valid else "not valid"
    grace = " (retired secret in its grace period)" if result.in_grace_period else ""
    output.line(f"{verdict}: {result.reason}{grace}")
    if result.key is not None:
        output.line(f"token_id  {result.key.token_id}")


def _run(args: argparse.Namespace, client: KeyClient, output: _Output) -> int:
    command: str = args.command
    if command == "generate":
        key = _read_key(args.key) if args.key is not None else None
        _show_issued(
            output,
            client.generate(
                key=key, idempotency_key=args.idempotency_key, **_settings(args)
            ),
        )
    elif command == "regenerate":
        _show_issued(
            output,
            client.regenerate(
                _read_key(args.key),
                idempotency_key=args.idempotency_key,
                **_settings(args),
            ),
        )
    elif command == "update":
        _show_key(output, client.update(_read_key(args.key), **_settings(args)))
    elif command == "info":
        _show_key(output, client.info(_read_key(args.key) if args.key else None))
    elif command == "list":
        page = client.list_keys(
            page=args.page,
            size=args.size,
            user_id=args.user_id,
            team_id=args.team_id,
            organization_id=args.organization_id,
            key_hash=args.key_hash,
            key_alias=args.key_alias,
            return_full_object=args.full,
            include_team_keys=args.include_team_keys,
            sort_by=args.sort_by,
            sort_order=args.sort_order,
        )
        _show_page(output, page)
    elif command == "delete":
        deleted = client.delete(
            [_read_key(k) for k in args.keys], key_aliases=args.alias
        )
        if output.as_json:
            output.json({"deleted_keys": deleted})
        else:
            output.line(f"deleted {len(deleted)} key(s)")
            for token_id in deleted:
                output.line(token_id)
    elif command in ("block", "unblock"):
        action: Callable[[str], key_pb2.Key] = getattr(client, command)
        _show_key(output, action(_read_key(args.key)))
    elif command == "verify":
        result = client.verify(_read_key(args.key))
        _show_verification(output, result)
        return EXIT_OK if result.valid else EXIT_KEY_NOT_VALID
    return EXIT_OK


def _exit_code(error: KeyServiceError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_OTHER_ERROR


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"keyctl: error: {message}\n")
    sys.exit(EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    """keyctl's entry point; returns the exit code."""
    try:
        code = _main(argv)
        # Flushed here, not at exit, so that a reader that went away (`| head`)
        # is met where it can be handled.
        sys.stdout.flush()
    except BrokenPipeError:
        # The recipe of the signal module's "Note on SIGPIPE": the interpreter
        # flushes stdout again at exit, so point it where nothing can fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="keyctl: %(message)s",
    )
    api_key = args.api_key or os.environ.get("KEYSERVICE_API_KEY") or None
    output = _Output(args.json, sys.stdout)

    try:
        _check_arguments(args, api_key)
        with KeyClient(args.target, api_key=api_key, timeout=args.timeout) as client:
            return _run(args, client, output)
    except argparse.ArgumentTypeError as exc:
        _fail(str(exc))
    except SettingError as exc:
        _fail(str(exc))
    except UnicodeError as exc:
        # The message leaves out the text at fault, which may be a secret.
        encoding = getattr(exc, "encoding", "the text encoding")
        reason = getattr(exc, "reason", "")
        _fail(f"{encoding} cannot encode or decode some text ({reason})")
    except KeyServiceError as error:
        _report(error, as_json=args.json)
        return _exit_code(error)


def _report(error: KeyServiceError, *, as_json: bool) -> None:
    if as_json:
        json.dump(
            {
                "error": {
                    "code": error.code.name,
                    "type": error.error_type,
                    "param": error.param,
                    "message": error.message,
                }
            },
            sys.stderr,
        )
        sys.stderr.write("\n")
    else:
        kind = error.error_type or error.code.name.lower()
        sys.stderr.write(f"keyctl: {kind}: {error.message}\n")


if __name__ == "__main__":
    sys.exit(main())
