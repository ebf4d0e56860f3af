"""Conversions between the protobuf messages and the domain layer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from keyserver import settings
from keyserver.errors import InvalidArgument
from keyserver.reads import KeyView
from keyservice.v1 import key_pb2

#: Top-level Key fields that Envoy's transcoder omits when unset, and that the
#: legacy JSON shows as null.
NULLABLE_KEY_FIELDS = tuple(
    field.name
    for field in key_pb2.Key.DESCRIPTOR.fields
    if field.has_presence and not field.is_repeated
)


def sent_settings(request: Message) -> dict[str, Any]:
    """Return the settings a request carries: only the fields that were sent."""
    sent: dict[str, Any] = {}
    # ListFields gives the fields that are set, and every setting has presence
    # (proto3 `optional` or a message), so a sent zero or empty value is there.
    for field, value in request.ListFields():
        name = field.name
        if name not in settings.ALL_FIELDS:
            continue
        if isinstance(value, struct_pb2.Struct | struct_pb2.ListValue):
            try:
                sent[name] = json_format.MessageToDict(value)
            except ValueError:
                # NaN or an infinity, which a protobuf Value can hold and JSON
                # cannot.
                raise InvalidArgument(
                    f"{name} must be JSON, which has no NaN or infinite numbers",
                    param=name,
                ) from None
        else:
            sent[name] = value
    return sent


def optional(request: Message, name: str) -> Any:
    """Return an optional field's value, or None when it was not sent."""
    return getattr(request, name) if request.HasField(name) else None


_EPOCH = dt.datetime(1970, 1, 1)
#: Key fields copied from a row when it holds a value (not None).
_OPTIONAL_FIELDS = (
    "key_alias",
    "duration",
    "max_budget",
    "user_id",
    "team_id",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "budget_id",
    "soft_budget",
)
#: Repeated and map fields copied from a row when they are not empty.
_COLLECTION_FIELDS = (
    "models",
    "allowed_cache_controls",
    "guardrails",
    "tags",
    "enforced_params",
)
_MAP_FIELDS = ("model_rpm_limit", "model_tpm_limit")
_TIME_FIELDS = (
    "expires",
    "budget_reset_at",
    "created_at",
    "updated_at",
    "last_rotated_at",
)


def _set_timestamp(field: timestamp_pb2.Timestamp, value: dt.datetime) -> None:
    # Timestamp.FromDatetime costs several times this: it handles time zones,
    # and every datetime here is naive UTC (see keyserver.models).
    since = value - _EPOCH
    field.seconds = since.days * 86400 + since.seconds
    field.nanos = since.microseconds * 1000


def key_message(row: KeyView, plaintext: str | None = None) -> key_pb2.Key:
    """Build the Key message of a row; `key` is the plaintext only when given.

    Verify builds one per call, so only the fields that hold something are
    touched: each assignment to a protobuf field costs about a microsecond.
    """
    key = key_pb2.Key(
        id=row.id,
        key=plaintext if plaintext is not None else row.token,
        key_name=row.key_name,
        token_id=row.token,
        token=row.token,
        spend=row.spend,
        blocked=row.blocked,
        rotation_count=row.rotation_count,
    )
    for name in _OPTIONAL_FIELDS:
        value = getattr(row, name)
        if value is not None:
            setattr(key, name, value)
    for name in _COLLECTION_FIELDS:
        items = getattr(row, name)
        if items:
            getattr(key, name).extend(items)
    for name in _MAP_FIELDS:
        limits = getattr(row, name)
        if limits:
            getattr(key, name).update(limits)
    for model, budget in row.model_max_budget.items():
        key.model_max_budget[model].CopyFrom(key_pb2.BudgetConfig(**budget))
    for name in _TIME_FIELDS:
        value = getattr(row, name)
        if value is not None:
            _set_timestamp(getattr(key, name), value)
    # Always present (as {} when empty): legacy clients read them as objects.
    key.metadata.SetInParent()
    if row.metadata_:
        key.metadata.update(row.metadata_)
    key.permissions.SetInParent()
    if row.permissions:
        key.permissions.update(row.permissions)
    return key


def null_fields(key: key_pb2.Key) -> list[str]:
    """The nullable top-level fields that are unset in `key`."""
    return [name for name in NULLABLE_KEY_FIELDS if not key.HasField(name)]


def rfc3339(field: timestamp_pb2.Timestamp) -> str:
    """A timestamp as the legacy JSON writes it, always with milliseconds:
    `2025-01-30T14:52:26.912Z`. (protobuf's JSON leaves out a zero fraction.)"""
    when = field.ToDatetime()
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def key_value(key: key_pb2.Key) -> struct_pb2.Value:
    """A Key as a JSON-shaped Value, with explicit nulls for unset fields."""
    as_dict = json_format.MessageToDict(
        key,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    for name in _TIME_FIELDS:
        if key.HasField(name):
            as_dict[name] = rfc3339(getattr(key, name))
    for name in null_fields(key):
        as_dict[name] = None
    value = struct_pb2.Value()
    value.struct_value.update(as_dict)
    return value
