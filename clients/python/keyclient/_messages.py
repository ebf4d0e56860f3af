"""Requests built from keyword arguments, and the results the clients return."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeVar

from google.protobuf import json_format, message

from keyservice.v1 import key_pb2, key_service_pb2


class Secret:
    """A plaintext key. Its repr and str show only its last four characters."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plaintext secret, to store or send; never log it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{self}')"

    def __str__(self) -> str:
        return f"sk-...{self._value[-4:]}" if len(self._value) > 8 else "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class KeySettings(TypedDict, total=False):
    """The settings that Generate, Regenerate and Update accept.

    An unsent setting keeps its stored value; a sent one, even zero, false or
    empty, replaces it.
    """

    key_alias: str
    user_id: str
    team_id: str
    models: Sequence[str]
    tags: Sequence[str]
    spend: float
    max_budget: float
    model_max_budget: Mapping[str, Mapping[str, Any]]
    budget_duration: str
    soft_budget: float
    max_parallel_requests: int
    metadata: Mapping[str, Any]
    tpm_limit: int
    rpm_limit: int
    model_rpm_limit: Mapping[str, int]
    model_tpm_limit: Mapping[str, int]
    allowed_cache_controls: Sequence[str]
    duration: str
    permissions: Mapping[str, Any]
    guardrails: Sequence[str]
    blocked: bool


class UpdateSettings(KeySettings, total=False):
    """The settings of Generate and Update: KeySettings and two more."""

    budget_id: str
    enforced_params: Sequence[str]


class RegenerateSettings(KeySettings, total=False):
    """The settings of Regenerate: KeySettings, the grace period, a new key."""

    grace_period: str
    new_key: str


@dataclasses.dataclass(frozen=True)
class IssuedKey:
    """A key just generated or rotated, with its new secret.

    `key` is the key's settings; its `key` field holds the token id, as in
    every other response, so printing it never shows the secret.
    """

    secret: Secret
    key: key_pb2.Key

    @property
    def token_id(self) -> str:
        return str(self.key.token_id)


@dataclasses.dataclass(frozen=True)
class Verification:
    """Whether a presented key may be used now and, if not, why."""

    valid: bool
    # The VerifyReason without its prefix: "OK", "NOT_FOUND", "EXPIRED",
    # "BLOCKED" or "OVER_BUDGET".
    reason: str
    in_grace_period: bool
    # The key's settings when it exists.
    key: key_pb2.Key | None


@dataclasses.dataclass(frozen=True)
class KeyPage:
    """One page of List: token ids, or key objects (dicts) with full objects."""

    keys: list[str | dict[str, Any]]
    total_count: int
    current_page: int
    total_pages: int


class SettingError(TypeError):
    """A setting the request does not take, or a value of the wrong shape.

    It is raised before any call is made. It is a TypeError, like any other
    wrong keyword argument, so that callers need not know this class.
    """


_Request = TypeVar("_Request", bound=message.Message)

_ALLOWED: dict[str, frozenset[str]] = {
    "GenerateRequest": UpdateSettings.__optional_keys__,
    "UpdateRequest": UpdateSettings.__optional_keys__,
    "RegenerateRequest": RegenerateSettings.__optional_keys__,
}


def build_settings_request(request: _Request, settings: Mapping[str, Any]) -> _Request:
    """Fill a Generate/Regenerate/Update request from keyword settings.

    Lists go into ListValue fields, mappings into Struct fields; None means
    "not sent", like leaving the argument out.
    """
    name = request.DESCRIPTOR.name
    allowed = _ALLOWED[name]
    for field_name, value in settings.items():
        if field_name not in allowed:
            raise SettingError(f"{name} takes no setting {field_name!r}")
        if value is None:
            continue
        field = request.DESCRIPTOR.fields_by_name[field_name]
        target = field.message_type.full_name if field.message_type else None
        if target == "google.protobuf.ListValue":
            if isinstance(value, str | bytes) or not isinstance(value, Sequence):
                raise SettingError(f"{field_name} must be a list of strings")
            # SetInParent marks the field sent even when the list is empty:
            # an empty list is a value ("every model"), unlike an unsent one.
            getattr(request, field_name).SetInParent()
            getattr(request, field_name).extend(list(value))
        elif target == "google.protobuf.Struct":
            if not isinstance(value, Mapping):
                raise SettingError(f"{field_name} must be a mapping")
            getattr(request, field_name).SetInParent()
            getattr(request, field_name).update(_plain(value))
        else:
            setattr(request, field_name, value)
    return request


def _plain(value: Any) -> Any:
    # Struct.update accepts only dicts and lists of JSON values.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value


def generate_request(
    key: str | None, settings: Mapping[str, Any]
) -> key_service_pb2.GenerateRequest:
    request = key_service_pb2.GenerateRequest()
    if key is not None:
        request.key = key
    return build_settings_request(request, settings)


def regenerate_request(
    key: str, settings: Mapping[str, Any]
) -> key_service_pb2.RegenerateRequest:
    return build_settings_request(key_service_pb2.RegenerateRequest(key=key), settings)


def update_request(
    key: str, settings: Mapping[str, Any]
) -> key_service_pb2.UpdateRequest:
    return build_settings_request(key_service_pb2.UpdateRequest(key=key), settings)


def list_request(
    *,
    page: int | None,
    size: int | None,
    user_id: str | None,
    team_id: str | None,
    organization_id: str | None,
    key_hash: str | None,
    key_alias: str | None,
    return_full_object: bool,
    include_team_keys: bool,
    sort_by: str | None,
    sort_order: Literal["asc", "desc"] | None,
) -> key_service_pb2.ListRequest:
    return key_service_pb2.ListRequest(
        page=page or 0,
        size=size or 0,
        user_id=user_id or "",
        team_id=team_id or "",
        organization_id=organization_id or "",
        key_hash=key_hash or "",
        key_alias=key_alias or "",
        return_full_object=return_full_object,
        include_team_keys=include_team_keys,
        sort_by=sort_by or "",
        sort_order=sort_order or "",
    )


def issued(key: key_pb2.Key) -> IssuedKey:
    """Move the plaintext secret out of a Generate/Regenerate key."""
    secret = Secret(key.key)
    settings = key_pb2.Key()
    settings.CopyFrom(key)
    settings.key = key.token_id
    return IssuedKey(secret=secret, key=settings)


def verification(response: key_service_pb2.VerifyResponse) -> Verification:
    reason = key_service_pb2.VerifyReason.Name(response.reason)
    return Verification(
        valid=response.valid,
        reason=reason.removeprefix("VERIFY_REASON_"),
        in_grace_period=response.in_grace_period,
        key=response.info if response.HasField("info") else None,
    )


def key_page(response: key_service_pb2.ListResponse) -> KeyPage:
    keys: list[str | dict[str, Any]] = []
    for value in response.keys:
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            keys.append(value.string_value)
        elif kind == "struct_value":
            keys.append(json_format.MessageToDict(value.struct_value))
    return KeyPage(
        keys=keys,
        total_count=response.total_count,
        current_page=response.current_page,
        total_pages=response.total_pages,
    )


def key_to_dict(key: key_pb2.Key) -> dict[str, Any]:
    """A key as the legacy JSON object: snake_case names, unset fields left out."""
    result: dict[str, Any] = json_format.MessageToDict(
        key, preserving_proto_field_name=True
    )
    return result
