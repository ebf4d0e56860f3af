"""Bad input is refused with a clear error that names the field, never the
secret, and changes nothing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from conftest import ServerHandle, admin_md
from support import as_json, build, error_param, generate, rpc_error

from keyservice.v1 import key_service_pb2 as pb

INVALID = grpc.StatusCode.INVALID_ARGUMENT

# (field sent with Regenerate, bad value, field the error must name)
BAD_REGENERATE: list[tuple[str, Any, str]] = [
    ("duration", "5x", "duration"),
    ("duration", "0d", "duration"),
    ("duration", "1y", "duration"),
    ("budget_duration", "weekly", "budget_duration"),
    ("grace_period", "-1", "grace_period"),
    ("grace_period", "10 minutes", "grace_period"),
    ("max_budget", -1, "max_budget"),
    ("soft_budget", -0.5, "soft_budget"),
    ("spend", -3, "spend"),
    ("tpm_limit", -5, "tpm_limit"),
    ("rpm_limit", -1, "rpm_limit"),
    ("max_parallel_requests", -2, "max_parallel_requests"),
    ("models", ["gpt-4", 7], "models"),
    ("model_rpm_limit", {"gpt-4": -1}, "model_rpm_limit"),
    ("model_tpm_limit", {"gpt-4": 1.5}, "model_tpm_limit"),
    ("model_max_budget", {"gpt-4": {"budget_limit": -1}}, "model_max_budget"),
    ("model_max_budget", {"gpt-4": {"time_period": "soon"}}, "model_max_budget"),
    ("model_max_budget", {"gpt-4": {"limit": 1}}, "model_max_budget"),
    ("new_key", "pk-not-starting-with-sk-prefix", "new_key"),
    ("new_key", "sk-short", "new_key"),
    ("new_key", "sk-has a space in the middle of it", "new_key"),
    ("metadata", {"blob": "x" * (64 * 1024)}, "metadata"),
    ("models", [f"model-{i}" for i in range(8000)], "models"),
    ("permissions", {f"p{i}": True for i in range(8000)}, "permissions"),
    # Past 100 years, or past datetime's year 9999.
    ("duration", "999999w", "duration"),
    ("duration", "1201mo", "duration"),
    ("budget_duration", "99999mo", "budget_duration"),
    ("grace_period", "999999w", "grace_period"),
    ("model_max_budget", {"gpt-4": {"time_period": "999999d"}}, "model_max_budget"),
    # PostgreSQL cannot store NUL in text; JSON cannot hold NaN or infinities.
    ("key_alias", "a\x00b", "key_alias"),
    ("metadata", {"ratio": float("nan")}, "metadata"),
    ("permissions", {"weight": float("inf")}, "permissions"),
    ("models", [float("-inf")], "models"),
]


async def test_lists_and_objects_are_capped_together(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    half = "x" * (40 * 1024)
    created = await generate(stub, admin, metadata={"blob": half})

    error = await rpc_error(
        stub.Update(
            build(pb.UpdateRequest, key=created.key.key, permissions={"note": half}),
            metadata=admin,
        )
    )

    assert (error.code(), error_param(error)) == (INVALID, "permissions")
    info = await stub.Info(pb.InfoRequest(key=created.key.key), metadata=admin)
    assert as_json(info.info)["permissions"] == {}


@pytest.mark.parametrize(("name", "value", "param"), BAD_REGENERATE)
async def test_bad_regenerate_input_is_refused_and_changes_nothing(
    server: ServerHandle, stub: Any, name: str, value: Any, param: str
) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin, key_alias="stable", max_budget=10)

    request = build(pb.RegenerateRequest, key=created.key.key, **{name: value})
    error = await rpc_error(stub.Regenerate(request, metadata=admin))

    assert error.code() == INVALID
    assert error_param(error) == param
    assert name in (error.details() or "")
    assert created.key.key not in (error.details() or "")
    if name == "new_key":
        assert value not in (error.details() or "")
    info = await stub.Info(pb.InfoRequest(key=created.key.key), metadata=admin)
    assert info.info.rotation_count == 0
    assert as_json(info.info) == {
        **as_json(created.key),
        "key": created.key.token_id,
    }


async def test_regenerate_of_unknown_key_is_not_found(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    unknown = "sk-no-such-key-exists-here-123"

    error = await rpc_error(
        stub.Regenerate(pb.RegenerateRequest(key=unknown), metadata=admin)
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_param(error) == "key"
    assert unknown not in (error.details() or "")


@pytest.mark.parametrize("ref", ["", "not-a-key", "ABCDEF"])
async def test_malformed_key_reference_is_invalid(
    server: ServerHandle, stub: Any, ref: str
) -> None:
    error = await rpc_error(
        stub.Regenerate(pb.RegenerateRequest(key=ref), metadata=admin_md(server))
    )

    assert (error.code(), error_param(error)) == (INVALID, "key")


async def test_generate_refuses_a_custom_key_that_is_in_use(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    chosen = "sk-team-alpha-shared-secret-01"
    await generate(stub, admin, key=chosen)

    error = await rpc_error(
        stub.Generate(pb.GenerateRequest(key=chosen), metadata=admin)
    )

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert chosen not in (error.details() or "")
    listed = await stub.List(pb.ListRequest(), metadata=admin)
    assert listed.total_count == 1


async def test_update_with_bad_value_changes_nothing(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin, tpm_limit=100)

    error = await rpc_error(
        stub.Update(
            build(pb.UpdateRequest, key=created.key.key, tpm_limit=-1, rpm_limit=5),
            metadata=admin,
        )
    )

    assert (error.code(), error_param(error)) == (INVALID, "tpm_limit")
    info = await stub.Info(pb.InfoRequest(key=created.key.key), metadata=admin)
    assert (info.info.tpm_limit, info.info.HasField("rpm_limit")) == (100, False)


async def test_list_refuses_bad_paging_and_sorting(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    for request, param in (
        (pb.ListRequest(size=101), "size"),
        (pb.ListRequest(page=-1), "page"),
        (pb.ListRequest(sort_by="token"), "sort_by"),
        (pb.ListRequest(sort_order="sideways"), "sort_order"),
    ):
        error = await rpc_error(stub.List(request, metadata=admin))
        assert (error.code(), error_param(error)) == (INVALID, param)


async def test_delete_with_one_unknown_key_deletes_nothing(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    kept = await generate(stub, admin)

    error = await rpc_error(
        stub.Delete(
            pb.DeleteRequest(keys=[kept.key.key, "sk-unknown-key-for-delete-0"]),
            metadata=admin,
        )
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (await stub.Verify(pb.VerifyRequest(key=kept.key.key), metadata=admin)).valid


async def test_list_and_delete_refuse_filters_no_key_can_hold(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    for request, param in (
        (pb.ListRequest(key_alias="a\x00b"), "key_alias"),
        (pb.ListRequest(user_id="u" * 257), "user_id"),
    ):
        error = await rpc_error(stub.List(request, metadata=admin))
        assert (error.code(), error_param(error)) == (INVALID, param)
    error = await rpc_error(
        stub.Delete(pb.DeleteRequest(key_aliases=["x\x00"]), metadata=admin)
    )
    assert (error.code(), error_param(error)) == (INVALID, "key_aliases")


async def test_a_request_that_does_not_parse_is_invalid_not_internal(
    server: ServerHandle, channel: grpc.aio.Channel
) -> None:
    # VerifyRequest.key (field 1) holding bytes that are not UTF-8, as Envoy's
    # transcoder forwards them from a percent-escape such as %FF.
    raw = bytes([0x0A, 3]) + b"\xff\xfe\xfd"
    verify = channel.unary_unary(
        "/keyservice.v1.KeyService/Verify",
        request_serializer=lambda data: data,
        response_deserializer=pb.VerifyResponse.FromString,
    )

    error = await rpc_error(verify(raw, metadata=admin_md(server)))

    assert error.code() == INVALID
    assert "UTF-8" in (error.details() or "")
