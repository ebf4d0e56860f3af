"""Domain errors of the key service.

    KeyServiceError
    ├── InvalidArgument      bad input; names the field at fault
    ├── Unauthenticated      no, malformed, unknown, expired or blocked credentials
    ├── PermissionDenied     a known caller that may not do this
    ├── NotFound             the key (or alias) does not exist
    ├── AlreadyExists        a secret that is already in use
    └── Conflict             a concurrent change won, or an idempotency key was reused

One place (keyserver.interceptors) maps them to gRPC status codes. Messages are
shown to callers, so they never contain a secret.
"""

from __future__ import annotations


class KeyServiceError(Exception):
    """Base of every error the service reports to a caller."""

    #: The legacy error `type` shown to REST clients.
    error_type = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidArgument(KeyServiceError):
    error_type = "invalid_request_error"


class Unauthenticated(KeyServiceError):
    error_type = "auth_error"


class PermissionDenied(KeyServiceError):
    error_type = "permission_error"


class NotFound(KeyServiceError):
    error_type = "not_found_error"


class AlreadyExists(KeyServiceError):
    error_type = "conflict_error"


class Conflict(KeyServiceError):
    error_type = "conflict_error"
