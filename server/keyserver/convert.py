"""Conversions between the protobuf messages and the domain layer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from keyserver import settings
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
    for field in request.DESCRIPTOR.fields:
        name = field.name
        if name not in settings.ALL_FIELDS or not request.HasField(name):
            continue
        value = getattr(request, name)
        if isinstance(value, struct_pb2.Struct | struct_pb2.ListValue):
            sent[name] = json_format.MessageToDict(value)
        else:
            sent[name] = value
    return sent


def optional(request: Message, name: str) -> Any:
    """Return an optional field's value, or None when it was not sent."""
    return getattr(request, name) if request.HasField(name) else None


def _timestamp(value: dt.datetime | None, field: timestamp_pb2.Timestamp) -> None:
    if value is not None:
        field.FromDatetime(value)


def key_message(row: KeyView, plaintext: str | None = None) -> key_pb2.Key:
    """Build the Key message of a row; `key` is the plaintext only when given."""
    key = key_pb2.Key(
        id=row.id,
        key=plaintext if plaintext is not None else row.token,
        key_name=row.key_name,
        token_id=row.token,
        token=row.token,
        models=row.models,
        spend=row.spend,
        allowed_cache_controls=row.allowed_cache_controls,
        guardrails=row.guardrails,
        blocked=row.blocked,
        tags=row.tags,
        enforced_params=row.enforced_params,
        model_rpm_limit=row.model_rpm_limit,
        model_tpm_limit=row.model_tpm_limit,
        rotation_count=row.rotation_count,
    )
    for name in (
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
    ):
        value = getattr(row, name)
        if value is not None:
            setattr(key, name, value)
    # Always present (as {} when empty): legacy clients read them as objects.
    key.metadata.SetInParent()
    key.metadata.update(row.metadata_)
    key.permissions.SetInParent()
    key.permissions.update(row.permissions)
    for model, budget in row.model_max_budget.items():
        key.model_max_budget[model].CopyFrom(key_pb2.BudgetConfig(**budget))
    _timestamp(row.expires, key.expires)
    _timestamp(row.budget_reset_at, key.budget_reset_at)
    _timestamp(row.created_at, key.created_at)
    _timestamp(row.updated_at, key.updated_at)
    _timestamp(row.last_rotated_at, key.last_rotated_at)
    return key


def null_fields(key: key_pb2.Key) -> list[str]:
    """The nullable top-level fields that are unset in `key`."""
    return [name for name in NULLABLE_KEY_FIELDS if not key.HasField(name)]


def key_value(key: key_pb2.Key) -> struct_pb2.Value:
    """A Key as a JSON-shaped Value, with explicit nulls for unset fields."""
    as_dict = json_format.MessageToDict(
        key,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    for name in null_fields(key):
        as_dict[name] = None
    value = struct_pb2.Value()
    value.struct_value.update(as_dict)
    return value
