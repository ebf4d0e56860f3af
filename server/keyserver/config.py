"""Settings of the server: flags, environment variables and first-start secrets."""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import secrets

from keyserver import tokens

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:50051"
MASTER_KEY_FILE = "master_key"
HASH_SECRET_FILE = "hash_secret"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where the server listens, what it stores in, and its secrets' sources."""

    data_dir: pathlib.Path
    listen: str = DEFAULT_LISTEN
    #: SQLAlchemy URL; empty means SQLite in `data_dir`.
    database_url: str = ""
    #: The master key; empty means read (or create) `data_dir/master_key`.
    master_key: str = dataclasses.field(default="", repr=False)
    #: Hex hash secret; empty means read (or create) `data_dir/hash_secret`.
    hash_secret: str = dataclasses.field(default="", repr=False)

    @classmethod
    def from_env(cls, **overrides: str | None) -> Settings:
        """Build settings from KEYSERVICE_* variables; non-None overrides win."""
        values = {
            "data_dir": os.environ.get("KEYSERVICE_DATA_DIR", "data"),
            "listen": os.environ.get("KEYSERVICE_LISTEN", DEFAULT_LISTEN),
            "database_url": os.environ.get("KEYSERVICE_DATABASE_URL", ""),
            "master_key": os.environ.get("KEYSERVICE_MASTER_KEY", ""),
            "hash_secret": os.environ.get("KEYSERVICE_HASH_SECRET", ""),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(
            data_dir=pathlib.Path(values["data_dir"]),
            listen=values["listen"],
            database_url=values["database_url"],
            master_key=values["master_key"],
            hash_secret=values["hash_secret"],
        )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'keyservice.db'}"


@dataclasses.dataclass(frozen=True)
class Secrets:
    """The master key and the hash secret, loaded once at start."""

    master_key: str = dataclasses.field(repr=False)
    hash_secret: bytes = dataclasses.field(repr=False)


def _read(path: pathlib.Path, what: str) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning(
            "the %s file %s can be read by other users (mode %04o); chmod 600 it",
            what,
            path,
            mode,
        )
    return path.read_text().strip()


def _read_or_create(path: pathlib.Path, make: str, what: str) -> str:
    if path.exists():
        return _read(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private file of its own, then linked into place: two
    # replicas starting at once never overwrite each other, and neither reads
    # the other's file before it holds the secret.
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(make + "\n")
        try:
            os.link(partial, path)
        except FileExistsError:
            return _read(path, what)
    finally:
        partial.unlink()
    logger.info("created a new %s in %s (mode 0600)", what, path)
    return make


def load_secrets(settings: Settings) -> Secrets:
    """Return the configured secrets, creating missing ones on first start."""
    master = settings.master_key or _read_or_create(
        settings.data_dir / MASTER_KEY_FILE, tokens.new_secret(), "master key"
    )
    if not master.startswith(tokens.KEY_PREFIX) or len(master) < 4:
        raise ValueError("the master key must start with 'sk-'")
    if len(master) < tokens.MIN_CUSTOM_KEY_LENGTH:
        # Allowed, as the legacy deployments' short master keys were, but a
        # master key is everything: say so once, at start.
        logger.warning(
            "the master key is shorter than %d characters and easy to guess; "
            "anyone who does is admin",
            tokens.MIN_CUSTOM_KEY_LENGTH,
        )
    hash_hex = settings.hash_secret or _read_or_create(
        settings.data_dir / HASH_SECRET_FILE, secrets.token_hex(32), "hash secret"
    )
    return Secrets(master_key=master, hash_secret=bytes.fromhex(hash_hex))
