"""One interceptor for every KeyService RPC: error mapping and the log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from keyserver import errors
from keyserver.servicer import current_actor

logger = logging.getLogger(__name__)

_SERVICE_PREFIX = "/keyservice.v1.KeyService/"

_CODES: dict[type[errors.KeyServiceError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.Conflict: grpc.StatusCode.ABORTED,
}

#: Trailing metadata that lets the REST layer build the legacy error body.
ERROR_TYPE_HEADER = "x-error-type"
ERROR_PARAM_HEADER = "x-error-param"

_Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class KeyServiceInterceptor(grpc.aio.ServerInterceptor):
    """Maps domain errors to status codes and logs one line per RPC.

    Unknown exceptions become INTERNAL with a generic message; the detail goes
    to the log only. No message here ever holds request data, so no secret
    reaches a log line.
    """

    def __init__(self) -> None:
        # The handler of a method never changes, so it is wrapped once; a new
        # wrapper per call showed up in the profile of cheap RPCs.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is None or not method.startswith(_SERVICE_PREFIX):
            wrapped = handler  # health and reflection pass through as they are
        else:
            wrapped = self._wrap(method[len(_SERVICE_PREFIX) :], handler)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, rpc: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner: _Handler = handler.unary_unary

        async def serve(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                if request is _UNDECODABLE:
                    raise errors.InvalidArgument(
                        "the request is not a valid message; text must be UTF-8"
                    )
                return await inner(request, context)
            except errors.KeyServiceError as exc:
                code = _CODES.get(type(exc), grpc.StatusCode.INTERNAL)
                trailers = [(ERROR_TYPE_HEADER, exc.error_type)]
                if exc.param:
                    trailers.append((ERROR_PARAM_HEADER, exc.param))
                context.set_trailing_metadata(tuple(trailers))
                await context.abort(code, exc.message)
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                code = grpc.StatusCode.INTERNAL
                logger.exception("rpc %s failed", rpc)
                context.set_trailing_metadata(((ERROR_TYPE_HEADER, "internal_error"),))
                await context.abort(code, "internal error")
            finally:
                logger.info(
                    "rpc=%s code=%s caller=%s ms=%.1f",
                    rpc,
                    code.name,
                    current_actor.get(),
                    (time.perf_counter() - started) * 1000,
                )

        return grpc.unary_unary_rpc_method_handler(
            serve,
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


#: Stands for a request that did not parse, so the handler can refuse it.
_UNDECODABLE = object()


def _lenient(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """Wrap a request parser so that a message it cannot parse (such as a string
    field that is not UTF-8, which Envoy's transcoder lets through from a
    percent-escape) reaches the handler as _UNDECODABLE. Left to gRPC, it would
    become INTERNAL, a server fault, which it is not."""

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError:
            return _UNDECODABLE

    return deserialize
