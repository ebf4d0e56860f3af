"""The blocking client: KeyClient over a grpc channel."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, Self, Unpack

import grpc

from keyclient import _messages
from keyclient._base import (
    DEFAULT_TARGET,
    DEFAULT_TIMEOUT,
    ClientBase,
    new_idempotency_key,
    plain,
    plain_keys,
)
from keyclient._messages import (
    IssuedKey,
    KeyPage,
    RegenerateSettings,
    Secret,
    UpdateSettings,
    Verification,
)
from keyclient._retry import RetryPolicy
from keyservice.v1 import key_pb2, key_service_pb2, key_service_pb2_grpc


class KeyClient(ClientBase):
    """Calls keyservice.v1.KeyService from blocking code.

    Use it as `with KeyClient(target, api_key=...) as client:`.
    Every method takes `timeout`, the deadline of the whole call in seconds
    (retries included); it defaults to the client's `timeout`.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | Secret | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        interceptors: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(target, api_key=api_key, timeout=timeout, retry=retry)
        if credentials is None:
            self._channel = grpc.insecure_channel(target)
        else:
            self._channel = grpc.secure_channel(target, credentials)
        channel = self._channel
        if interceptors:
            channel = grpc.intercept_channel(channel, *interceptors)
        self._stub = key_service_pb2_grpc.KeyServiceStub(channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def generate(
        self,
        *,
        key: str | Secret | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        **settings: Unpack[UpdateSettings],
    ) -> IssuedKey:
        """Create a key; `key` is a caller-chosen secret, else one is drawn.

        The call carries an idempotency key (a fresh one unless given), so a
        retry after a lost answer returns the first key instead of creating a
        second.
        """
        request = _messages.generate_request(
            plain(key) if key is not None else None, settings
        )
        response = self._call(
            "Generate",
            request,
            timeout,
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        return _messages.issued(response.key)

    def regenerate(
        self,
        key: str | Secret,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        **settings: Unpack[RegenerateSettings],
    ) -> IssuedKey:
        """Rotate a key's secret and apply `settings` in the same transaction.

        The call carries an idempotency key (a fresh one unless given), so a
        retry after a lost answer returns the first rotation's secret instead
        of rotating twice.
        """
        request = _messages.regenerate_request(plain(key), settings)
        response = self._call(
            "Regenerate",
            request,
            timeout,
            idempotency_key=idempotency_key or new_idempotency_key(),
        )
        return _messages.issued(response.key)

    def update(
        self,
        key: str | Secret,
        *,
        timeout: float | None = None,
        **settings: Unpack[UpdateSettings],
    ) -> key_pb2.Key:
        """Change the settings sent; the others keep their stored values."""
        request = _messages.update_request(plain(key), settings)
        response = self._call("Update", request, timeout)
        return response.key

    def delete(
        self,
        keys: Sequence[str | Secret] = (),
        *,
        key_aliases: Sequence[str] = (),
        timeout: float | None = None,
    ) -> list[str]:
        """Delete keys by secret, token id or alias; returns the token ids."""
        request = key_service_pb2.DeleteRequest(
            keys=plain_keys(keys), key_aliases=list(key_aliases)
        )
        response = self._call("Delete", request, timeout)
        return list(response.deleted_keys)

    def info(
        self, key: str | Secret | None = None, *, timeout: float | None = None
    ) -> key_pb2.Key:
        """One key's settings; without `key`, the caller's own.

        InfoResponse also carries `key`, the token id of the key described; it
        is the returned Key's `token_id` (and its `key`), so only `info` is
        returned.
        """
        request = key_service_pb2.InfoRequest(key=plain(key) if key else "")
        response = self._call("Info", request, timeout)
        return response.info

    def list_keys(
        self,
        *,
        page: int | None = None,
        size: int | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        organization_id: str | None = None,
        key_hash: str | None = None,
        key_alias: str | None = None,
        return_full_object: bool = False,
        include_team_keys: bool = False,
        sort_by: str | None = None,
        sort_order: Literal["asc", "desc"] | None = None,
        timeout: float | None = None,
    ) -> KeyPage:
        """One page of the keys that match the filters (the List RPC)."""
        request = _messages.list_request(
            page=page,
            size=size,
            user_id=user_id,
            team_id=team_id,
            organization_id=organization_id,
            key_hash=key_hash,
            key_alias=key_alias,
            return_full_object=return_full_object,
            include_team_keys=include_team_keys,
            sort_by=sort_by,
            sort_order=sort_order,
        )
        response = self._call("List", request, timeout)
        return _messages.key_page(response)

    def block(self, key: str | Secret, *, timeout: float | None = None) -> key_pb2.Key:
        request = key_service_pb2.BlockRequest(key=plain(key))
        response = self._call("Block", request, timeout)
        return response.key

    def unblock(
        self, key: str | Secret, *, timeout: float | None = None
    ) -> key_pb2.Key:
        request = key_service_pb2.UnblockRequest(key=plain(key))
        response = self._call("Unblock", request, timeout)
        return response.key

    def verify(
        self, key: str | Secret, *, timeout: float | None = None
    ) -> Verification:
        """Whether a presented secret may be used now and, if not, why."""
        request = key_service_pb2.VerifyRequest(key=plain(key))
        response = self._call("Verify", request, timeout)
        return _messages.verification(response)

    def _call(
        self,
        rpc: str,
        request: Any,
        timeout: float | None,
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        method = getattr(self._stub, rpc)
        metadata = self._metadata(idempotency_key)
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)

        attempt = 0
        unavailable: str | None = None
        while True:
            attempt += 1
            try:
                return method(
                    request,
                    timeout=max(deadline - time.monotonic(), 0.0),
                    metadata=metadata,
                    # A failed attempt leaves the channel in its reconnect
                    # backoff, where a new attempt would fail at once; a retry
                    # waits for the reconnect instead, within the deadline.
                    wait_for_ready=attempt > 1,
                )
            except grpc.RpcError as exc:
                code = exc.code()
                delay = self._retry.backoff(attempt)
                retry = self._retry.should_retry(
                    rpc, code, attempt, idempotency_key=idempotency_key
                )
                if not retry or time.monotonic() + delay >= deadline:
                    raise self._error(
                        code, exc.details(), exc.trailing_metadata(), unavailable
                    ) from exc
                unavailable = exc.details()
            self._log_retry(rpc, attempt, delay)
            time.sleep(delay)
