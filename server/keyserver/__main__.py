"""Command line of the server: `keyserver serve` and `keyserver migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import pathlib
import sys

from keyserver import app, db, logs
from keyserver.config import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keyserver", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "apply migrations, then serve gRPC until SIGINT or SIGTERM"),
        ("migrate", "create or upgrade the database schema, then exit"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--data-dir",
            help="where the SQLite file and first-start secrets live "
            "(env KEYSERVICE_DATA_DIR, default ./data)",
        )
        command.add_argument(
            "--database-url",
            help="SQLAlchemy URL, e.g. postgresql+asyncpg://user@host/db "
            "(env KEYSERVICE_DATABASE_URL, default SQLite in the data dir)",
        )
        command.add_argument(
            "--log-level", default="INFO", help="logging level (default INFO)"
        )
        if name == "serve":
            command.add_argument(
                "--listen",
                help="host:port to listen on; port 0 picks a free one "
                "(env KEYSERVICE_LISTEN, default 127.0.0.1:50051)",
            )
            command.add_argument(
                "--port-file",
                type=pathlib.Path,
                help="write the bound port to this file once serving",
            )
    return parser


async def _migrate(settings: Settings) -> None:
    engine = db.create_engine(settings.resolved_database_url())
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    settings = Settings.from_env(
        data_dir=args.data_dir,
        database_url=args.database_url,
        listen=getattr(args, "listen", None),
    )
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        logging.getLogger("keyserver").info("database schema is up to date")
        return 0
    asyncio.run(app.serve(settings, port_file=args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
