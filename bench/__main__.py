"""`python -m bench`: start the server and Envoy, seed keys, drive load, print a
table. `make bench` runs it; `make bench BENCH_ARGS=--quick` finishes in under a
minute. See bench/RESULTS.md for results and how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import pathlib
import platform
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

from bench import processes, seed
from bench.load import LoadGenerator, Result, Scenario

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

SCENARIOS = (
    ("check", "Check (ceiling)"),
    ("verify", "Verify"),
    ("info", "Info"),
    ("regenerate", "Regenerate"),
    ("rest_regenerate", "Regenerate REST"),
)

#: The targets of issue 4, for SQLite and one server process.
TARGETS = {
    "regenerate_vs_ceiling": 0.50,
    "verify_vs_ceiling": 0.80,
    "rest_vs_grpc": 0.75,
    "p50_large_vs_small": 1.2,
    "rss_large_mb": 200.0,
}


@dataclasses.dataclass
class Run:
    """Every scenario of one backend at one key count."""

    backend: str
    size: int
    seed_s: float
    results: dict[str, Result]
    peak_rss_mb: float


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1k and 20k keys, 1 s per scenario: under a minute",
    )
    parser.add_argument(
        "--sizes", help="comma-separated key counts (default 1000,1000000)"
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres (default both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("KEYSERVICE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="database for the PostgreSQL runs; a fresh schema is made and dropped",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(kind for kind, _ in SCENARIOS),
        help="comma-separated subset of " + ", ".join(k for k, _ in SCENARIOS),
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight (16)"
    )
    parser.add_argument(
        "--duration", type=float, help="seconds measured (default 5; quick 1)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="run every scenario this many times, interleaved, and keep the "
        "fastest round of each: a burst of other work on the machine then "
        "spoils one round, not the result (default 2; quick 1)",
    )
    parser.add_argument("--warmup", type=float, help="seconds of warm-up (default 1)")
    parser.add_argument(
        "--rest-client",
        choices=("raw", "httpx"),
        default="raw",
        help="HTTP/1.1 keep-alive client of the REST scenario: a minimal one on "
        "asyncio streams (default; costs the client about what grpc.aio does) "
        "or httpx",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the server to core 0 and the client and Envoy to core 1",
    )
    parser.add_argument(
        "--profile",
        type=pathlib.Path,
        help="record a py-spy flame graph of the server per scenario into this "
        "folder (needs the bench extra; sampling costs the server some CPU)",
    )
    parser.add_argument(
        "--server",
        help="command that stands for `keyserver` (split on spaces), e.g. to "
        "measure a prototype: 'python /tmp/patched_keyserver.py'",
    )
    parser.add_argument(
        "--server-ref",
        help="measure the server of this git revision (git archive of server/ "
        "and gen/python into the scratch folder) instead of the work tree",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch data directories"
    )
    return parser


def _human(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


def _postgres_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _postgres_execute(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_postgres_dsn(url), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _postgres_version(url: str) -> str | None:
    async def version() -> str:
        import asyncpg

        connection = await asyncpg.connect(_postgres_dsn(url), timeout=5)
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    try:
        return asyncio.run(version())
    except Exception:
        return None


@contextlib.contextmanager
def _database(
    backend: str, postgres_url: str, data_dir: pathlib.Path
) -> Iterator[tuple[str | None, str | None]]:
    """(URL for the server or None for its SQLite default, PostgreSQL schema)."""
    if backend == "sqlite":
        yield None, None
        return
    schema = f"ks_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_execute(postgres_url, f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{separator}schema={schema}", schema
    finally:
        asyncio.run(
            _postgres_execute(postgres_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        )


def _profiler(
    folder: pathlib.Path | None, pid: int, name: str, seconds: float
) -> subprocess.Popen[bytes] | None:
    if folder is None:
        return None
    py_spy = shutil.which("py-spy", path=str(processes.BIN)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: pip install -e '.[bench]'")
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--nonblocking",
            "--duration",
            str(max(1, int(seconds))),
            # Collapsed stacks: flamegraph.pl and speedscope read them.
            "--format",
            "raw",
            "--output",
            str(folder / f"{name}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _scenario(
    args: argparse.Namespace,
    load: LoadGenerator,
    kind: str,
    server: processes.Server,
    envoy: processes.Envoy | None,
    size: int,
    master_key: str,
    hash_secret: bytes,
    name: str,
) -> Result:
    scenario = Scenario(
        kind=kind,
        grpc_address=f"127.0.0.1:{server.port}",
        rest_url=envoy.base_url if envoy else "",
        master_key=master_key,
        hash_secret=hash_secret,
        size=size,
        concurrency=args.concurrency,
        warmup_s=args.warmup,
        duration_s=args.duration,
        server_pid=server.pid,
        rest_client=args.rest_client,
        envoy_pid=envoy.pid if envoy and kind.startswith("rest") else None,
    )
    profiler = _profiler(args.profile, server.pid, name, args.warmup + args.duration)
    result = load.run(scenario)
    if profiler is not None:
        profiler.wait()
    print(
        f"    {kind}: {result.rate:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"server CPU {result.server_cpu:.0%}, client CPU {result.client_cpu:.0%}, "
        f"errors {result.errors}",
        file=sys.stderr,
        flush=True,
    )
    return result


def _one_run(
    args: argparse.Namespace,
    load: LoadGenerator,
    backend: str,
    size: int,
    workdir: pathlib.Path,
) -> Run:
    cores = None if args.no_pin else ({0}, {1})
    data_dir = workdir / f"{backend}-{_human(size)}"
    data_dir.mkdir(parents=True)
    master_key = "sk-" + secrets.token_urlsafe(32)
    hash_secret = secrets.token_bytes(32)
    for name, value in (("master_key", master_key), ("hash_secret", hash_secret.hex())):
        path = data_dir / name
        path.write_text(value + "\n")
        path.chmod(0o600)

    with _database(backend, args.postgres_url, data_dir) as (url, schema):
        processes.migrate(data_dir, url, args.server_command)
        began = time.perf_counter()
        if schema is None:
            seed.seed_sqlite(str(data_dir / "keyservice.db"), hash_secret, size)
        else:
            asyncio.run(
                seed.seed_postgres(
                    _postgres_dsn(args.postgres_url), schema, hash_secret, size
                )
            )
        seed_s = time.perf_counter() - began
        print(
            f"  {backend}, {_human(size)} keys: seeded in {seed_s:.1f} s",
            file=sys.stderr,
            flush=True,
        )

        results: dict[str, Result] = {}
        with processes.keyserver(
            data_dir, url, cores and cores[0], args.server_command
        ) as server:
            envoy_cm = (
                processes.envoy(server.port, data_dir / "envoy", cores and cores[1])
                if "rest_regenerate" in args.kinds
                else contextlib.nullcontext(None)
            )
            with envoy_cm as envoy:
                for round_ in range(1, args.rounds + 1):
                    for kind in args.kinds:
                        result = _scenario(
                            args,
                            load,
                            kind,
                            server,
                            envoy,
                            size,
                            master_key,
                            hash_secret,
                            f"{backend}-{_human(size)}-{kind}-{round_}",
                        )
                        best = results.get(kind)
                        if best is None or result.rate > best.rate:
                            results[kind] = result
            rss = processes.peak_rss_mb(server.pid)
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return Run(backend, size, seed_s, results, rss)


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def _ratio(a: Result | None, b: Result | None) -> float | None:
    if a is None or b is None or not b.rate:
        return None
    return a.rate / b.rate


def _ratios(run: Run, small: Run | None) -> dict[str, str]:
    results = run.results
    ceiling = results.get("check")
    text: dict[str, str] = {}
    if ceiling is not None:
        text["check"] = "1.00"
    for kind in ("verify", "info", "regenerate"):
        ratio = _ratio(results.get(kind), ceiling)
        if ratio is not None:
            text[kind] = f"{ratio:.2f} of ceiling"
    rest = _ratio(results.get("rest_regenerate"), results.get("regenerate"))
    if rest is not None:
        text["rest_regenerate"] = f"{rest:.2f} of gRPC"
    if small is not None and small is not run:
        for kind, result in results.items():
            before = small.results.get(kind)
            if before is not None and before.p50_ms:
                growth = result.p50_ms / before.p50_ms
                note = f"p50 {growth:.2f}x {_human(small.size)}"
                text[kind] = f"{text[kind]}; {note}" if kind in text else note
    return text


def _table(runs: list[Run]) -> list[str]:
    lines = [
        "| scenario | req/s | p50 | p99 | ratio |",
        "|---|---:|---:|---:|---|",
    ]
    smallest: dict[str, Run] = {}
    for run in runs:
        if run.backend not in smallest or run.size < smallest[run.backend].size:
            smallest[run.backend] = run
    labels = dict(SCENARIOS)
    for run in runs:
        ratios = _ratios(run, smallest.get(run.backend))
        where = f"{run.backend}, {_human(run.size)} keys"
        for kind, result in run.results.items():
            errors = f" ({result.errors} errors)" if result.errors else ""
            lines.append(
                f"| {where}: {labels[kind]}{errors} | {result.rate:,.0f} | "
                f"{_ms(result.p50_ms)} | {_ms(result.p99_ms)} | "
                f"{ratios.get(kind, '')} |"
            )
        lines.append(f"| {where}: server peak RSS | | | | {run.peak_rss_mb:.0f} MB |")
    return lines


def _cpu_ratio(a: Result, b: Result) -> float:
    """The throughput ratio a server with a whole core to itself would show:
    the inverse ratio of server CPU per request."""
    if not (a.rate and b.rate and a.server_cpu):
        return float("nan")
    return (b.server_cpu / b.rate) / (a.server_cpu / a.rate)


def _verdicts(runs: list[Run]) -> list[str]:
    lines: list[str] = []
    by_backend: dict[str, list[Run]] = {}
    for run in runs:
        by_backend.setdefault(run.backend, []).append(run)
    for backend, group in by_backend.items():
        group.sort(key=lambda run: run.size)
        small, large = group[0], group[-1]
        for run in group:
            where = f"{backend} {_human(run.size)}"
            r = run.results
            for name, kind, other in (
                ("regenerate_vs_ceiling", "regenerate", "check"),
                ("verify_vs_ceiling", "verify", "check"),
                ("rest_vs_grpc", "rest_regenerate", "regenerate"),
            ):
                ratio = _ratio(r.get(kind), r.get(other))
                if ratio is not None:
                    ok = ratio >= TARGETS[name]
                    by_cpu = _cpu_ratio(r[kind], r[other])
                    lines.append(
                        f"- {where}: {kind} / {other} = {ratio:.2f} "
                        f"(target >= {TARGETS[name]:.2f}): {'PASS' if ok else 'FAIL'}"
                        f"; by server CPU per request {by_cpu:.2f}"
                    )
        if large is not small:
            for kind, result in large.results.items():
                before = small.results.get(kind)
                # Check reads no key: its p50 moves with the machine only.
                if kind == "check" or before is None or not before.p50_ms:
                    continue
                growth = result.p50_ms / before.p50_ms
                ok = growth <= TARGETS["p50_large_vs_small"]
                lines.append(
                    f"- {backend}: {kind} p50 {_human(large.size)} / "
                    f"{_human(small.size)} = {growth:.2f} (target <= "
                    f"{TARGETS['p50_large_vs_small']}): {'PASS' if ok else 'FAIL'}"
                )
        ok = large.peak_rss_mb < TARGETS["rss_large_mb"]
        lines.append(
            f"- {backend} {_human(large.size)}: server peak RSS "
            f"{large.peak_rss_mb:.0f} MB (target < {TARGETS['rss_large_mb']:.0f} "
            f"MB): {'PASS' if ok else 'FAIL'}"
        )
    return lines


def _cpu_lines(runs: list[Run]) -> list[str]:
    lines = []
    for run in runs:
        parts = []
        for kind, r in run.results.items():
            envoy = f"/{r.envoy_cpu:.0%}" if r.envoy_cpu is not None else ""
            server_us = r.server_cpu / r.rate * 1e6 if r.rate else float("nan")
            client_us = r.client_cpu / r.rate * 1e6 if r.rate else float("nan")
            parts.append(
                f"{kind} {r.server_cpu:.0%}/{r.client_cpu:.0%}{envoy} "
                f"(other {r.other_cpu:.0%}; per request: server {server_us:.0f} "
                f"µs, client {client_us:.0f} µs)"
            )
        lines.append(f"- {run.backend} {_human(run.size)}: " + ", ".join(parts))
    return lines


def _machine(postgres: str | None) -> list[str]:
    import grpc

    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    envoy = subprocess.run(
        [processes.envoy_binary(), "--version"], capture_output=True, text=True
    ).stdout.strip()
    found = re.search(r"\d+\.\d+\.\d+", envoy)
    envoy_version = found.group(0) if found else "unknown"
    return [
        f"- machine: {model}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Linux {platform.release()}",
        f"- Python {platform.python_version()}, grpcio {grpc.__version__}, "
        f"SQLite {sqlite3.sqlite_version}, PostgreSQL {postgres or 'not available'}, "
        f"Envoy {envoy_version}",
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = args.sizes or ("1000,20000" if args.quick else "1000,1000000")
    args.sizes_list = [int(size) for size in sizes.split(",")]
    args.duration = args.duration or (1.0 if args.quick else 5.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.warmup = (
        args.warmup if args.warmup is not None else (0.3 if args.quick else 1.0)
    )
    args.kinds = [kind.strip() for kind in args.scenarios.split(",")]
    known = {kind for kind, _ in SCENARIOS}
    if unknown := set(args.kinds) - known:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not args.no_pin and (os.cpu_count() or 1) < 2:
        args.no_pin = True

    backends = [name.strip() for name in args.backends.split(",")]
    postgres = _postgres_version(args.postgres_url) if "postgres" in backends else None
    if "postgres" in backends and postgres is None:
        print(
            f"PostgreSQL at {args.postgres_url} is not reachable: skipping it",
            file=sys.stderr,
        )
        backends.remove("postgres")

    started = time.perf_counter()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="keyservice-bench-"))
    args.server_command = args.server.split() if args.server else None
    if args.server_ref:
        args.server_command = processes.extract_revision(
            args.server_ref, workdir / "server-ref"
        )
        version = f"revision {args.server_ref}"
    elif args.server:
        version = f"command {args.server!r}"
    else:
        version = processes.code_version()
    load = LoadGenerator(None if args.no_pin else {1})
    runs: list[Run] = []
    try:
        for backend in backends:
            for size in args.sizes_list:
                runs.append(_one_run(args, load, backend, size, workdir))
    finally:
        load.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    if not args.server_ref and not args.server:
        after = processes.code_version()
        if after != version:
            version = f"{version}, CHANGED during the run to {after}"
    pinning = (
        "not pinned"
        if args.no_pin
        else "server on core 0; load generator and Envoy on core 1"
    )
    out = [
        f"keyservice benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        *_machine(postgres),
        f"- server code: {version}",
        f"- {args.concurrency} requests in flight (closed loop), {args.warmup:g} s "
        f"warm-up, {args.duration:g} s measured per scenario, best of "
        f"{args.rounds} round(s); {pinning}; "
        f"REST client: {args.rest_client}",
        "- seeding: "
        + ", ".join(
            f"{run.backend} {_human(run.size)} in {run.seed_s:.1f} s" for run in runs
        ),
        "",
        *_table(runs),
        "",
        "Targets (issue 4; they are set for SQLite):",
        *_verdicts(runs),
        "",
        "CPU during the measured window, fraction of one core, "
        "server/client[/Envoy] (other: the rest of the machine, i.e. noise; "
        "server CPU per request is the figure least moved by noise):",
        *_cpu_lines(runs),
        "",
        f"Total {time.perf_counter() - started:.0f} s.",
    ]
    errors = [
        f"- {run.backend} {_human(run.size)} {kind}: {result.first_error}"
        for run in runs
        for kind, result in run.results.items()
        if result.errors
    ]
    if errors:
        out += ["", "First error of each failing scenario:", *errors]
    print("\n".join(out))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
