"""The load generator: a closed loop of N requests in flight, in its own process.

Each of N tasks sends a request, waits for its answer and sends the next, so
there are always N requests in flight and the rate is what the server (and the
path to it) sustains. Requests finishing during a warm-up are not counted.
Throughput counts the answers that arrive within the measured window; the
latency percentiles are taken over the requests sent and answered within it.

The process is started once (multiprocessing, spawn) and runs one scenario per
message on its pipe, so that importing grpc and opening channels is not timed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import multiprocessing
import os
import random
import resource
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

from bench import keyset
from bench.processes import cpu_seconds, machine_busy_seconds

#: A scenario stops early after this many failed requests.
MAX_ERRORS = 1000


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What to drive, and against what."""

    kind: str  # check | verify | info | regenerate | rest_regenerate
    grpc_address: str
    rest_url: str
    master_key: str
    hash_secret: bytes
    size: int
    concurrency: int
    warmup_s: float
    duration_s: float
    server_pid: int
    rest_client: str = "raw"
    envoy_pid: int | None = None


@dataclasses.dataclass
class Result:
    requests: int
    errors: int
    first_error: str
    rate: float
    p50_ms: float
    p99_ms: float
    client_cpu: float  # fraction of one core during the measured window
    server_cpu: float
    envoy_cpu: float | None
    #: Busy CPU of the whole machine not spent by the server, client or Envoy:
    #: other processes competing with the benchmark (ideally about 0).
    other_cpu: float


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


class _Rotations:
    """Keys to rotate, each in flight at most once, with its current token.

    A key comes back to the end of the queue once rotated, under its new
    token, so a small key set can be rotated for as long as the run lasts.
    """

    def __init__(self, keys: range, hash_secret: bytes, limit: int = 50_000) -> None:
        indices = random.sample(keys, min(len(keys), limit))
        self._queue = collections.deque(indices)
        self._tokens: dict[int, str] = {}
        self._secret = hash_secret

    def take(self) -> tuple[int, str]:
        index = self._queue.popleft()
        current = self._tokens.get(index) or keyset.token(self._secret, index)
        return index, current

    def give_back(self, index: int, token: str | None) -> None:
        if token:
            self._tokens[index] = token
            self._queue.append(index)


#: Rotation state per (server, scenario), kept across rounds: a key rotated in
#: one round is rotated again under its new token in the next.
_ROTATIONS: dict[tuple[int, str], _Rotations] = {}


def _rotations(scenario: Scenario, keys: range) -> _Rotations:
    where = (scenario.server_pid, scenario.kind)
    if where not in _ROTATIONS:
        _ROTATIONS[where] = _Rotations(keys, scenario.hash_secret)
    return _ROTATIONS[where]


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _grpc_call(scenario: Scenario) -> tuple[Callable[[], Awaitable[None]], Any]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from keyservice.v1 import key_service_pb2, key_service_pb2_grpc

    channel = grpc.aio.insecure_channel(scenario.grpc_address)
    await channel.channel_ready()
    stub = key_service_pb2_grpc.KeyServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    metadata = (("authorization", f"Bearer {scenario.master_key}"),)
    reads = keyset.read_range(scenario.size)
    secret = scenario.hash_secret

    async def check() -> None:
        answer = await health.Check(health_pb2.HealthCheckRequest(), metadata=metadata)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"health status {answer.status}")

    async def verify() -> None:
        key = keyset.plaintext(random.randrange(reads.start, reads.stop))
        answer = await stub.Verify(
            key_service_pb2.VerifyRequest(key=key), metadata=metadata
        )
        if not answer.valid:
            raise RuntimeError(f"verify answered reason {answer.reason}")

    async def info() -> None:
        ref = keyset.token(secret, random.randrange(reads.start, reads.stop))
        answer = await stub.Info(
            key_service_pb2.InfoRequest(key=ref), metadata=metadata
        )
        if answer.key != ref:
            raise RuntimeError("info answered another key")

    rotations = (
        _rotations(scenario, keyset.grpc_rotation_range(scenario.size))
        if scenario.kind == "regenerate"
        else None
    )

    async def regenerate() -> None:
        assert rotations is not None
        index, token = rotations.take()
        new_token = None
        try:
            answer = await stub.Regenerate(
                key_service_pb2.RegenerateRequest(key=token), metadata=metadata
            )
            new_token = answer.key.token
        finally:
            rotations.give_back(index, new_token)

    calls = {
        "check": check,
        "verify": verify,
        "info": info,
        "regenerate": regenerate,
    }
    return calls[scenario.kind], channel


class _RawHttp:
    """A minimal HTTP/1.1 keep-alive client: one connection per task.

    httpx spends milliseconds of Python per request; this spends about what
    grpc.aio's client does, so the REST scenario measures Envoy and the
    server, not the client.
    """

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self._host, self._port = host, int(port or 80)
        self._head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._connections: dict[int, tuple[Any, Any]] = {}

    async def _connection(self) -> tuple[asyncio.StreamReader, Any]:
        task = id(asyncio.current_task())
        if task not in self._connections:
            self._connections[task] = await asyncio.open_connection(
                self._host, self._port
            )
        return self._connections[task]

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self._connection()
        writer.write(
            f"POST {path} HTTP/1.1\r\nhost: {self._host}\r\n{self._head}"
            f"content-type: application/json\r\ncontent-length: {len(body)}"
            "\r\n\r\n".encode()
            + body
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        if "content-length" in fields:
            content = await reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                chunks.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            content = b"".join(chunk[:-2] for chunk in chunks)
        else:
            raise RuntimeError(f"cannot frame the response: {head!r}")
        return int(status_line.split()[1]), content

    async def aclose(self) -> None:
        for _, writer in self._connections.values():
            writer.close()


async def _rest_call(scenario: Scenario) -> tuple[Callable[[], Awaitable[None]], Any]:
    rotations = _rotations(scenario, keyset.rest_rotation_range(scenario.size))
    if scenario.rest_client == "raw":
        raw = _RawHttp(
            scenario.rest_url, {"authorization": f"Bearer {scenario.master_key}"}
        )

        async def raw_regenerate() -> None:
            index, token = rotations.take()
            new_token = None
            try:
                status, content = await raw.post(f"/key/{token}/regenerate", b"{}")
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {content[:300]!r}")
                new_token = json.loads(content)["token"]
            finally:
                rotations.give_back(index, new_token)

        return raw_regenerate, raw

    import httpx

    client = httpx.AsyncClient(
        base_url=scenario.rest_url,
        timeout=30.0,
        limits=httpx.Limits(
            max_connections=scenario.concurrency,
            max_keepalive_connections=scenario.concurrency,
        ),
        headers={"authorization": f"Bearer {scenario.master_key}"},
    )

    async def regenerate() -> None:
        index, token = rotations.take()
        new_token = None
        try:
            response = await client.post(f"/key/{token}/regenerate", json={})
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text}")
            new_token = json.loads(response.content)["token"]
        finally:
            rotations.give_back(index, new_token)

    return regenerate, client


async def run(scenario: Scenario) -> Result:
    if scenario.kind == "rest_regenerate":
        call, closer = await _rest_call(scenario)
    else:
        call, closer = await _grpc_call(scenario)

    clock = time.perf_counter
    begin = clock()
    start = begin + scenario.warmup_s
    end = start + scenario.duration_s
    latencies: list[float] = []
    counted = 0
    errors: list[str] = []
    marks: dict[str, tuple[float, float, float | None, float]] = {}

    def mark(name: str) -> None:
        envoy = cpu_seconds(scenario.envoy_pid) if scenario.envoy_pid else None
        marks[name] = (
            _process_cpu(),
            cpu_seconds(scenario.server_pid),
            envoy,
            machine_busy_seconds(),
        )

    async def marker() -> None:
        await asyncio.sleep(max(0.0, start - clock()))
        mark("start")
        await asyncio.sleep(max(0.0, end - clock()))
        mark("end")

    async def worker() -> None:
        nonlocal counted
        while True:
            sent = clock()
            if sent >= end:
                return
            try:
                await call()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if len(errors) > MAX_ERRORS:
                    return
                continue
            done = clock()
            if start <= done <= end:
                counted += 1
                if sent >= start:
                    latencies.append(done - sent)

    await asyncio.gather(marker(), *(worker() for _ in range(scenario.concurrency)))
    await closer.aclose() if hasattr(closer, "aclose") else await closer.close()

    latencies.sort()
    (c0, s0, e0, m0), (c1, s1, e1, m1) = marks["start"], marks["end"]
    window = scenario.duration_s
    ours = (c1 - c0) + (s1 - s0) + ((e1 or 0.0) - (e0 or 0.0))
    return Result(
        requests=counted,
        errors=len(errors),
        first_error=errors[0] if errors else "",
        rate=counted / window,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        client_cpu=(c1 - c0) / window,
        server_cpu=(s1 - s0) / window,
        envoy_cpu=None if e0 is None or e1 is None else (e1 - e0) / window,
        other_cpu=max(0.0, (m1 - m0) - ours) / window,
    )


def _serve(connection: Connection, cores: set[int] | None) -> None:
    if cores:
        os.sched_setaffinity(0, cores)
    while True:
        scenario = connection.recv()
        if scenario is None:
            return
        try:
            connection.send(asyncio.run(run(scenario)))
        except Exception as exc:
            connection.send(exc)


class LoadGenerator:
    """The client process; `run` drives one scenario in it."""

    def __init__(self, cores: set[int] | None) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, cores), daemon=True)
        self._process.start()

    def run(self, scenario: Scenario) -> Result:
        self._connection.send(scenario)
        answer = self._connection.recv()
        if isinstance(answer, Exception):
            raise answer
        result: Result = answer
        return result

    def close(self) -> None:
        self._connection.send(None)
        self._process.join(10)
