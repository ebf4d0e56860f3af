"""Small helpers shared by the gRPC tests."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

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


class ReflectionClient:
    """Calls a service knowing nothing but what server reflection tells: no
    proto file, no generated code, as grpcurl does."""

    def __init__(self, channel: grpc.Channel, service: str) -> None:
        self._channel = channel
        self._service_name = service
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self._service = descriptor_pool.DescriptorPool(self.database).FindServiceByName(
            service
        )

    def services(self) -> list[str]:
        return list(self.database.get_services())

    def call(
        self, method_name: str, body: dict[str, Any], metadata: Any
    ) -> dict[str, Any]:
        method = self._service.FindMethodByName(method_name)
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        invoke = self._channel.unary_unary(
            f"/{self._service_name}/{method_name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        request = json_format.ParseDict(body, request_class())
        response = invoke(request, metadata=metadata, timeout=10)
        answer: dict[str, Any] = json_format.MessageToDict(
            response, preserving_proto_field_name=True
        )
        return answer
