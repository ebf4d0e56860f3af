"""What the async and the sync client share: settings, metadata, logging."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from keyclient._messages import Secret
from keyclient._retry import RetryPolicy

logger = logging.getLogger("keyclient")

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 10.0


class ClientBase:
    def __init__(
        self,
        target: str,
        *,
        api_key: str | Secret | None,
        timeout: float,
        retry: RetryPolicy | None,
    ) -> None:
        self._target = target
        self._api_key = plain(api_key) if api_key is not None else None
        self._timeout = timeout
        self._retry = retry or RetryPolicy()

    def __repr__(self) -> str:
        # The API key stays out on purpose: reprs end up in logs and tracebacks.
        return f"{type(self).__name__}(target={self._target!r})"

    def _metadata(self, idempotency_key: str | None) -> tuple[tuple[str, str], ...]:
        metadata: list[tuple[str, str]] = []
        if self._api_key:
            metadata.append(("authorization", f"Bearer {self._api_key}"))
        if idempotency_key:
            metadata.append(("idempotency-key", idempotency_key))
        return tuple(metadata)

    def _log_retry(self, rpc: str, attempt: int, delay: float) -> None:
        logger.info(
            "keyservice %s got UNAVAILABLE (attempt %d of %d), retrying in %.2fs",
            rpc,
            attempt,
            self._retry.max_attempts,
            delay,
        )


def plain(key: str | Secret) -> str:
    return key.reveal() if isinstance(key, Secret) else key


def plain_keys(keys: Sequence[str | Secret]) -> list[str]:
    return [plain(k) for k in keys]


def new_idempotency_key() -> str:
    return str(uuid.uuid4())
