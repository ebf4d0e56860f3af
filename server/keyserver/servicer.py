"""The gRPC face of the key service: validate, call the domain layer, answer."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import grpc
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from keyserver import convert
from keyserver.auth import Principal
from keyserver.errors import AlreadyExists, Conflict, Unauthenticated
from keyserver.keys import Idempotency, Issued, KeyManager, VerifyReason
from keyserver.reads import KeyView
from keyservice.v1 import key_pb2, key_service_pb2, key_service_pb2_grpc

#: The caller of the RPC being served, as the log line names it.
current_actor: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_actor", default="-"
)

#: Set by Envoy on transcoded REST requests (see envoy.yaml).
TRANSCODED_HEADER = "x-keyservice-transcoded"
#: The response header that lists the Key fields the REST body shows as null.
NULL_FIELDS_HEADER = "x-keyservice-null-fields"
IDEMPOTENCY_HEADER = "idempotency-key"
#: Set by Envoy to the (unescaped) key in the path of POST /key/{key}/regenerate.
PATH_KEY_HEADER = "x-keyservice-path-key"

_REASONS = {
    VerifyReason.OK: key_service_pb2.VERIFY_REASON_OK,
    VerifyReason.NOT_FOUND: key_service_pb2.VERIFY_REASON_NOT_FOUND,
    VerifyReason.EXPIRED: key_service_pb2.VERIFY_REASON_EXPIRED,
    VerifyReason.BLOCKED: key_service_pb2.VERIFY_REASON_BLOCKED,
    VerifyReason.OVER_BUDGET: key_service_pb2.VERIFY_REASON_OVER_BUDGET,
}

_Metadata = dict[str, str]

GENERATE = key_service_pb2.GenerateResponse
REGENERATE = key_service_pb2.RegenerateResponse
#: The responses that carry a newly issued secret.
_IssuedResponse = TypeVar(
    "_IssuedResponse",
    key_service_pb2.GenerateResponse,
    key_service_pb2.RegenerateResponse,
)


def _metadata(context: grpc.aio.ServicerContext) -> _Metadata:
    # Only binary headers (`-bin`) have bytes values, and none is read here.
    return dict(context.invocation_metadata() or ())


def _credential(metadata: _Metadata) -> str | None:
    header = metadata.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated(
                "malformed authorization metadata: expected 'Bearer <key>'"
            )
        return value.strip()
    return metadata.get("x-litellm-api-key") or None


class KeyServiceServicer(key_service_pb2_grpc.KeyServiceServicer):
    def __init__(self, keys: KeyManager) -> None:
        self._keys = keys

    async def _authenticate(self, metadata: _Metadata) -> Principal:
        principal = await self._keys.authenticate(_credential(metadata))
        current_actor.set(principal.actor)
        return principal

    @staticmethod
    def _mark_nulls(
        context: grpc.aio.ServicerContext, metadata: _Metadata, key: key_pb2.Key
    ) -> None:
        """For a REST caller, name the unset fields of the answer's Key, which
        the transcoder leaves out and the legacy JSON shows as null.

        The list goes in the trailers, which leave with the response: sending
        it in the headers ahead of the response would cost a batch of its own.
        """
        if metadata.get(TRANSCODED_HEADER):
            nulls = convert.null_fields(key)
            if nulls:
                context.set_trailing_metadata(((NULL_FIELDS_HEADER, ",".join(nulls)),))

    async def Generate(
        self,
        request: key_service_pb2.GenerateRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.GenerateResponse:
        async def issue(
            principal: Principal, idempotency: Idempotency | None, _: _Metadata
        ) -> key_service_pb2.GenerateResponse:
            issued = await self._keys.generate(
                principal,
                convert.sent_settings(request),
                key=convert.optional(request, "key"),
                idempotency=idempotency,
                render=lambda done: _issued(GENERATE, done).SerializeToString(),
            )
            return _issued(GENERATE, issued)

        return await self._once(context, "Generate", request, GENERATE, issue)

    async def Regenerate(
        self,
        request: key_service_pb2.RegenerateRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.RegenerateResponse:
        async def issue(
            principal: Principal, idempotency: Idempotency | None, metadata: _Metadata
        ) -> key_service_pb2.RegenerateResponse:
            issued = await self._keys.regenerate(
                principal,
                # On POST /key/{key}/regenerate the key in the path names the
                # key, as it did for legacy clients, whatever the body says.
                metadata.get(PATH_KEY_HEADER) or request.key,
                convert.sent_settings(request),
                grace_period=convert.optional(request, "grace_period"),
                new_key=convert.optional(request, "new_key"),
                idempotency=idempotency,
                render=lambda done: _issued(REGENERATE, done).SerializeToString(),
            )
            return _issued(REGENERATE, issued)

        return await self._once(context, "Regenerate", request, REGENERATE, issue)

    async def _once(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        request: Message,
        response_class: type[_IssuedResponse],
        issue: Callable[
            [Principal, Idempotency | None, _Metadata], Awaitable[_IssuedResponse]
        ],
    ) -> _IssuedResponse:
        """Run a call that issues a secret, at most once per idempotency key.

        A repeat of the call (same credential, idempotency key and request)
        within the window gets the first response back, secret included.
        """
        metadata = _metadata(context)
        credential = _credential(metadata)
        idempotency: Idempotency | None = None
        if IDEMPOTENCY_HEADER in metadata and credential:
            credential_token = self._keys.credential_token(credential)
            idempotency = self._keys.idempotency(
                credential_token,
                metadata[IDEMPOTENCY_HEADER],
                method,
                request.SerializeToString(deterministic=True),
            )
            # A replay needs no new authorisation: only the caller who made the
            # first call holds both its credential and its idempotency key.
            replayed = await self._replay(idempotency, response_class)
            if replayed is not None:
                is_master = self._keys.is_master(credential_token)
                current_actor.set("master" if is_master else "replay")
                self._mark_nulls(context, metadata, replayed.key)
                return replayed

        principal = await self._authenticate(metadata)
        try:
            response = await issue(principal, idempotency, metadata)
        except (Conflict, AlreadyExists):
            # The same call, retried while the first was in flight, lost the
            # race to it: answer with the winner's response.
            if idempotency is None:
                raise
            replayed = await self._replay(idempotency, response_class)
            if replayed is None:
                raise
            self._mark_nulls(context, metadata, replayed.key)
            return replayed
        self._mark_nulls(context, metadata, response.key)
        return response

    async def _replay(
        self, idempotency: Idempotency, response_class: type[_IssuedResponse]
    ) -> _IssuedResponse | None:
        stored = await self._keys.replay(idempotency)
        if stored is None:
            return None
        response = response_class.FromString(stored)
        await self._keys.check_replayable(response.key.id, response.key.token_id)
        return response

    async def Update(
        self,
        request: key_service_pb2.UpdateRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.UpdateResponse:
        metadata = _metadata(context)
        principal = await self._authenticate(metadata)
        row = await self._keys.update(
            principal, request.key, convert.sent_settings(request)
        )
        response = key_service_pb2.UpdateResponse(key=convert.key_message(row))
        self._mark_nulls(context, metadata, response.key)
        return response

    async def Delete(
        self,
        request: key_service_pb2.DeleteRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.DeleteResponse:
        principal = await self._authenticate(_metadata(context))
        deleted = await self._keys.delete(
            principal, list(request.keys), list(request.key_aliases)
        )
        return key_service_pb2.DeleteResponse(deleted_keys=deleted)

    async def Info(
        self,
        request: key_service_pb2.InfoRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.InfoResponse:
        metadata = _metadata(context)
        principal = await self._authenticate(metadata)
        row = await self._keys.info(principal, request.key)
        response = key_service_pb2.InfoResponse(
            key=row.token, info=convert.key_message(row)
        )
        self._mark_nulls(context, metadata, response.info)
        return response

    async def List(
        self,
        request: key_service_pb2.ListRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.ListResponse:
        principal = await self._authenticate(_metadata(context))
        page = await self._keys.list_keys(
            principal,
            page=request.page,
            size=request.size,
            user_id=request.user_id,
            team_id=request.team_id,
            organization_id=request.organization_id,
            key_hash=request.key_hash,
            key_alias=request.key_alias,
            include_team_keys=request.include_team_keys,
            sort_by=request.sort_by,
            sort_order=request.sort_order,
        )
        return key_service_pb2.ListResponse(
            keys=_list_entries(page.keys, request.return_full_object),
            total_count=page.total_count,
            current_page=page.page,
            total_pages=page.total_pages,
        )

    async def Block(
        self,
        request: key_service_pb2.BlockRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.BlockResponse:
        metadata = _metadata(context)
        principal = await self._authenticate(metadata)
        row = await self._keys.set_blocked(principal, request.key, True)
        response = key_service_pb2.BlockResponse(key=convert.key_message(row))
        self._mark_nulls(context, metadata, response.key)
        return response

    async def Unblock(
        self,
        request: key_service_pb2.UnblockRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.UnblockResponse:
        metadata = _metadata(context)
        principal = await self._authenticate(metadata)
        row = await self._keys.set_blocked(principal, request.key, False)
        response = key_service_pb2.UnblockResponse(key=convert.key_message(row))
        self._mark_nulls(context, metadata, response.key)
        return response

    async def Verify(
        self,
        request: key_service_pb2.VerifyRequest,
        context: grpc.aio.ServicerContext,
    ) -> key_service_pb2.VerifyResponse:
        metadata = _metadata(context)
        principal = await self._authenticate(metadata)
        verdict = await self._keys.verify(principal, request.key)
        response = key_service_pb2.VerifyResponse(
            valid=verdict.valid,
            reason=_REASONS[verdict.reason],
            in_grace_period=verdict.in_grace_period,
        )
        if verdict.key is not None:
            response.info.CopyFrom(convert.key_message(verdict.key))
            self._mark_nulls(context, metadata, response.info)
        return response


def _issued(response_class: type[_IssuedResponse], issued: Issued) -> _IssuedResponse:
    return response_class(key=convert.key_message(issued.key, issued.plaintext))


def _list_entries(rows: Sequence[KeyView], full: bool) -> list[struct_pb2.Value]:
    if full:
        return [convert.key_value(convert.key_message(row)) for row in rows]
    return [struct_pb2.Value(string_value=row.token) for row in rows]
