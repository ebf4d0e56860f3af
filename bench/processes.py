"""The processes under test: the key server and Envoy, pinned to their cores.

Envoy is configured exactly as the tests run it (tests/envoy_harness.py renders
the repository's envoy.yaml with free ports and the server as upstream).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
START_TIMEOUT_S = 60.0

sys.path.insert(0, str(ROOT))
from tests.envoy_harness import envoy_binary, render_config  # noqa: E402


def pin(pid: int, cores: set[int] | None) -> None:
    if cores:
        os.sched_setaffinity(pid, cores)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (from /proc/stat)."""
    fields = pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    busy = user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def migrate(
    data_dir: pathlib.Path,
    database_url: str | None,
    server_command: list[str] | None = None,
) -> None:
    command = [
        *(server_command or [str(BIN / "keyserver")]),
        "migrate",
        "--data-dir",
        str(data_dir),
    ]
    if database_url:
        command += ["--database-url", database_url]
    subprocess.run(command, check=True, capture_output=True)


def code_version() -> str:
    """The commit of the working tree, and whether server/ differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "server"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}{' with uncommitted changes in server/' if dirty else ''}"


def extract_revision(revision: str, into: pathlib.Path) -> list[str]:
    """Check `server/` and `gen/python` of a revision out into `into` (git
    archive, the work tree is untouched); answer the command that serves it."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", revision, "server", "gen/python"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    path = f"{into / 'server'}:{into / 'gen' / 'python'}"
    # PYTHONPATH comes before the editable install's finder, so this revision's
    # keyserver package is the one imported.
    return ["env", f"PYTHONPATH={path}", sys.executable, "-m", "keyserver"]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: pathlib.Path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def keyserver(
    data_dir: pathlib.Path,
    database_url: str | None,
    cores: set[int] | None,
    server_command: list[str] | None = None,
) -> Iterator[Server]:
    """`keyserver serve` on a free port, logging as it does by default.

    `server_command` replaces `keyserver`, e.g. to measure a prototype.
    """
    port_file = data_dir / "grpc.port"
    port_file.unlink(missing_ok=True)
    log_path = data_dir / "server.log"
    command = [
        *(server_command or [str(BIN / "keyserver")]),
        "serve",
        "--data-dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        "--port-file",
        str(port_file),
    ]
    if database_url:
        command += ["--database-url", database_url]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        pin(process.pid, cores)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"keyserver did not start:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.05)
        yield Server(process, int(port_file.read_text()), log_path)
    finally:
        _stop(process)


@dataclass
class Envoy:
    process: subprocess.Popen[bytes]
    base_url: str

    @property
    def pid(self) -> int:
        return self.process.pid


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as response:
        body: bytes = response.read()
        return body


@contextlib.contextmanager
def envoy(
    upstream_port: int, workdir: pathlib.Path, cores: set[int] | None
) -> Iterator[Envoy]:
    """Envoy in front of the server, one worker thread (`--concurrency 1`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "envoy.json"
    config_path.write_text(json.dumps(render_config(upstream_port)))
    address_path = workdir / "admin_address"
    address_path.unlink(missing_ok=True)
    log_path = workdir / "envoy.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                envoy_binary(),
                "--config-path",
                str(config_path),
                "--disable-hot-restart",
                "--admin-address-path",
                str(address_path),
                "--concurrency",
                "1",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        pin(process.pid, cores)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"envoy did not start:\n{log_path.read_text()}")
            address = address_path.read_text().strip() if address_path.exists() else ""
            if address:
                try:
                    _get(f"http://{address}/ready")
                    listeners = json.loads(
                        _get(f"http://{address}/listeners?format=json")
                    )
                    break
                except OSError:
                    pass
            time.sleep(0.05)
        (port,) = (
            listener["local_address"]["socket_address"]["port_value"]
            for listener in listeners["listener_statuses"]
            if listener["name"] == "rest"
        )
        yield Envoy(process, f"http://127.0.0.1:{port}")
    finally:
        _stop(process)
