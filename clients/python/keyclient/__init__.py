"""Typed clients and the keyctl CLI for keyservice.v1.KeyService.

    from keyclient import KeyClient

    with KeyClient("127.0.0.1:50051", api_key=master_key) as client:
        issued = client.generate(key_alias="ci", max_budget=100)
        store(issued.secret.reveal())

AsyncKeyClient is the same client for asyncio code.
"""

from __future__ import annotations

from keyclient._base import DEFAULT_TARGET, DEFAULT_TIMEOUT
from keyclient._messages import (
    IssuedKey,
    KeyPage,
    KeySettings,
    RegenerateSettings,
    Secret,
    SettingError,
    UpdateSettings,
    Verification,
)
from keyclient._retry import RetryPolicy
from keyclient.aio import AsyncKeyClient
from keyclient.errors import (
    ConflictError,
    InvalidArgumentError,
    KeyServiceError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from keyclient.sync import KeyClient

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "AsyncKeyClient",
    "ConflictError",
    "InvalidArgumentError",
    "IssuedKey",
    "KeyClient",
    "KeyPage",
    "KeyServiceError",
    "KeySettings",
    "NotFoundError",
    "PermissionDeniedError",
    "RegenerateSettings",
    "RetryPolicy",
    "Secret",
    "SettingError",
    "UnauthenticatedError",
    "UnavailableError",
    "UpdateSettings",
    "Verification",
]
