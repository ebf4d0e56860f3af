"""What the async and the sync client share: settings, metadata, logging."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence

import grpc

from keyclient._messages import Secret
from keyclient._retry import RetryPolicy
from keyclient.errors import KeyServiceError, from_rpc_error

logger = logging.getLogger("keyclient")

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 10.0


def _printable_ascii(text: str) -> bool:
    return all("!" <= ch <= "~" for ch in text)


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
        if self._api_key is not None and not _printable_ascii(self._api_key):
            # gRPC would refuse it as metadata on every call, with an INTERNAL
            # error that does not say why. The key itself stays out of the
            # message.
            raise ValueError("api_key must be printable ASCII without spaces")
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

    def _error(
        self,
        code: grpc.StatusCode,
        details: str | None,
        trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
        unavailable: str | None,
    ) -> KeyServiceError:
        """The exception for a call's last failed attempt.

        A retry waits for the server until the deadline, so a server that never
        comes back ends the call with DEADLINE_EXCEEDED; the earlier attempt's
        UNAVAILABLE message, which says why, is kept in the message.
        """
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and unavailable:
            details = (
                f"{details or code.name}; the attempt before was UNAVAILABLE: "
                f"{unavailable}"
            )
        return from_rpc_error(code, details, trailing_metadata)

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
