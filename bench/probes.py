"""`python -m bench.probes`: the key server with the steps of its hot paths timed.

Use it in place of `keyserver`:

    python -m bench --quick --backends sqlite --sizes 1000 \\
        --scenarios check,verify,regenerate --server ".venv/bin/python -m bench.probes"

Each step of Verify and Regenerate is wrapped in a timer of the serving
thread's CPU time (time.thread_time, a system call of about 1-3 µs, which the
report states), so the figures are what the step costs inside the loaded
server, caches thrashed by gRPC's C core, not in a tight loop. When the server
stops, the mean of each step is appended to $KEYSERVICE_PROBE_OUT (default
./bench-probes.txt).

KEYSERVICE_PROBE_VERIFY bounds what Verify can cost at best: `empty` answers an
empty VerifyResponse at once, `auth` authenticates the caller first, `prebuilt`
answers the first real response again and again, without reading a key.
"""

from __future__ import annotations

import atexit
import collections
import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from keyserver import __main__ as entry
from keyserver import convert, db, keys, servicer, settings, store
from keyservice.v1 import key_service_pb2

_clock = time.thread_time
_spent: collections.Counter[str] = collections.Counter()
_calls: collections.Counter[str] = collections.Counter()


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = _clock()
        try:
            return function(*args, **kwargs)
        finally:
            _spent[name] += _clock() - started
            _calls[name] += 1

    return timed


def _timed_async(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = _clock()
        try:
            return await function(*args, **kwargs)
        finally:
            _spent[name] += _clock() - started
            _calls[name] += 1

    return timed


def _stub_verify(mode: str) -> None:
    answered: list[key_service_pb2.VerifyResponse] = []
    real = servicer.KeyServiceServicer.Verify

    async def verify(self: Any, request: Any, context: Any) -> Any:
        if mode == "auth":
            await self._authenticate(servicer._metadata(context))
        if mode in ("empty", "auth"):
            return key_service_pb2.VerifyResponse(valid=True)
        if not answered:
            answered.append(await real(self, request, context))
        return answered[0]

    servicer.KeyServiceServicer.Verify = verify


def _install() -> None:
    rpc = servicer.KeyServiceServicer
    for name in ("Verify", "Regenerate", "Info"):
        setattr(rpc, name, _timed_async(f"rpc {name}", getattr(rpc, name)))
    rpc._authenticate = _timed_async("authenticate", rpc._authenticate)
    manager = keys.KeyManager
    manager.verify = _timed_async("KeyManager.verify", manager.verify)
    manager.regenerate = _timed_async("KeyManager.regenerate", manager.regenerate)
    db.Database.transaction = _timed_async(
        "Database.transaction", db.Database.transaction
    )
    convert.sent_settings = _timed("sent_settings", convert.sent_settings)
    convert.key_message = _timed("key_message", convert.key_message)
    settings.validate = _timed("settings.validate", settings.validate)
    for name in (
        "key_by_token",
        "update_key",
        "end_grace_periods",
        "retire_secret",
        "audit",
    ):
        setattr(store, name, _timed(f"store.{name}", getattr(store, name)))


def _timer_cost() -> float:
    rounds = 10_000
    started = time.perf_counter()
    for _ in range(rounds):
        _clock()
        _clock()
    return (time.perf_counter() - started) / rounds


def _report() -> None:
    if not _calls:
        return  # `migrate`, or no call was served
    path = os.environ.get("KEYSERVICE_PROBE_OUT", "bench-probes.txt")
    lines = [
        f"# {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}; "
        f"a timer pair costs {_timer_cost() * 1e6:.1f} µs, included below"
    ]
    for name in sorted(_calls, key=lambda step: -_spent[step] / _calls[step]):
        mean = _spent[name] / _calls[name] * 1e6
        lines.append(f"{name:28s} {mean:8.1f} µs  ({_calls[name]} calls)")
    with open(path, "a") as out:
        out.write("\n".join(lines) + "\n")


def main() -> int:
    mode = os.environ.get("KEYSERVICE_PROBE_VERIFY", "")
    if mode:
        if mode not in ("empty", "auth", "prebuilt"):
            raise SystemExit("KEYSERVICE_PROBE_VERIFY is empty, auth or prebuilt")
        _stub_verify(mode)
    _install()
    atexit.register(_report)
    return entry.main()


if __name__ == "__main__":
    sys.exit(main())
