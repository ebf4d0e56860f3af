"""Assembles and runs the gRPC server: KeyService, health and reflection."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pathlib
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from keyserver import db, tokens
from keyserver.clock import Clock, SystemClock
from keyserver.config import Settings, load_secrets
from keyserver.interceptors import KeyServiceInterceptor
from keyserver.keys import KeyManager
from keyserver.servicer import KeyServiceServicer
from keyservice.v1 import key_service_pb2, key_service_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = key_service_pb2.DESCRIPTOR.services_by_name["KeyService"].full_name
#: How long in-flight RPCs may finish after SIGTERM.
SHUTDOWN_GRACE_SECONDS = 10.0
#: The most call metadata (headers) the server accepts.
MAX_METADATA_BYTES = 96 * 1024
#: How often spend resets and stale idempotent replays are swept.
HOUSEKEEPING_INTERVAL_SECONDS = 60.0


@dataclasses.dataclass
class RunningServer:
    """A started server and what its callers need to reach it."""

    server: grpc.aio.Server
    port: int
    database: db.Database
    keys: KeyManager
    health: health_aio.HealthServicer
    housekeeping: asyncio.Task[None]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float | None = SHUTDOWN_GRACE_SECONDS) -> None:
        await self.health.enter_graceful_shutdown()
        self.housekeeping.cancel()
        await self.server.stop(grace)
        await asyncio.gather(self.housekeeping, return_exceptions=True)
        await self.database.close()


async def housekeeping(keys: KeyManager, interval: float) -> None:
    """Reset due budgets and forget stale replays, every `interval` seconds."""
    while True:
        await asyncio.sleep(interval)
        try:
            while await keys.reset_due_budgets() > 0:
                pass
            await keys.forget_stale_replays()
        except Exception:
            logger.exception("housekeeping failed; retrying in %.0fs", interval)


async def start(
    settings: Settings,
    clock: Clock | None = None,
    housekeeping_interval: float = HOUSEKEEPING_INTERVAL_SECONDS,
) -> RunningServer:
    """Migrate the database, then start serving on `settings.listen`."""
    secrets = load_secrets(settings)
    engine = db.create_engine(settings.resolved_database_url())
    await db.migrate(engine)
    database = db.Database(engine)
    keys = KeyManager(
        database,
        tokens.Hasher(secrets.hash_secret),
        secrets.master_key,
        clock or SystemClock(),
    )

    server = grpc.aio.server(
        interceptors=[KeyServiceInterceptor()],
        options=[
            # Above Envoy's own limit on request headers (60 KiB), so that a
            # REST caller with too large headers gets Envoy's 431, not a gRPC
            # error that names the headers. Below it gRPC's defaults (8 KiB soft,
            # 16 KiB hard) refused some calls at random.
            ("grpc.max_metadata_size", MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
        ],
    )
    key_service_pb2_grpc.add_KeyServiceServicer_to_server(
        KeyServiceServicer(keys), server
    )
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(settings.listen)
    if port == 0:
        await database.close()
        raise OSError(f"cannot listen on {settings.listen}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    logger.info(
        "serving %s on %s", SERVICE_NAME, settings.listen.rsplit(":", 1)[0] + f":{port}"
    )
    sweeper = asyncio.create_task(housekeeping(keys, housekeeping_interval))
    return RunningServer(server, port, database, keys, health_servicer, sweeper)


def _write_port_file(path: pathlib.Path, port: int) -> None:
    # Written whole, then renamed, so a reader never sees a partial number.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n")
    os.replace(partial, path)


async def serve(settings: Settings, port_file: pathlib.Path | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then drain in-flight RPCs and stop."""
    running = await start(settings)
    if port_file is not None:
        _write_port_file(port_file, running.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    logger.info("shutting down: finishing in-flight calls")
    await running.stop()
    logger.info("stopped")
