"""Small helpers shared by the gRPC tests."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from keyservice.v1 import key_service_pb2 as pb

M = TypeVar("M", bound=Message)


def build(message_class: type[M], **fields: Any) -> M:
    """Build a request from JSON-shaped values (lists, dicts), as REST would."""
    return json_format.ParseDict(fields, message_class())


def as_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """Await a call that must fail, and return its error."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError("the call succeeded but was expected to fail")


def error_param(exc: grpc.aio.AioRpcError) -> str | None:
    for key, value in exc.trailing_metadata() or ():
        if key == "x-error-param":
            return str(value)
    return None


async def generate(
    stub: Any, call_metadata: Any, /, **fields: Any
) -> pb.GenerateResponse:
    response: pb.GenerateResponse = await stub.Generate(
        build(pb.GenerateRequest, **fields), metadata=call_metadata
    )
    return response
