"""Exceptions raised by the keyservice clients.

KeyServiceError
 +-- InvalidArgumentError    INVALID_ARGUMENT: the request was refused as it is
 +-- UnauthenticatedError    UNAUTHENTICATED: no key, or an unknown one, was sent
 +-- PermissionDeniedError   PERMISSION_DENIED: the caller may not do this
 +-- NotFoundError           NOT_FOUND: no such key
 +-- ConflictError           ALREADY_EXISTS, ABORTED: a secret in use, a lost race,
 |                           an idempotency key reused for another request
 +-- UnavailableError        UNAVAILABLE, DEADLINE_EXCEEDED: no answer in time

Any other status (INTERNAL, UNKNOWN, ...) raises KeyServiceError itself. Every
exception keeps the server's message, which never holds a secret.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc


class KeyServiceError(Exception):
    """A call to keyservice failed; `code` is the gRPC status."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        error_type: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        # The server's `x-error-type` (such as "not_found_error") and, when one
        # field is at fault, `x-error-param` (its name).
        self.error_type = error_type
        self.param = param

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.name})"


class InvalidArgumentError(KeyServiceError):
    """The server refused the request's contents."""


class UnauthenticatedError(KeyServiceError):
    """The call carried no key, or one the server does not accept."""


class PermissionDeniedError(KeyServiceError):
    """The caller's key may not do this."""


class NotFoundError(KeyServiceError):
    """The key named does not exist."""


class ConflictError(KeyServiceError):
    """The request conflicts with the current state; re-read and decide."""


class UnavailableError(KeyServiceError):
    """The server could not be reached or did not answer in time."""


_BY_CODE: dict[grpc.StatusCode, type[KeyServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
}


def from_rpc_error(
    code: grpc.StatusCode,
    details: str | None,
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> KeyServiceError:
    """Build the exception for a failed call from its status and trailers."""
    trailers: dict[str, str] = {}
    for name, value in trailing_metadata or ():
        if isinstance(value, str):
            trailers[name] = value
    cls = _BY_CODE.get(code, KeyServiceError)
    return cls(
        details or code.name,
        code=code,
        error_type=trailers.get("x-error-type"),
        param=trailers.get("x-error-param"),
    )
