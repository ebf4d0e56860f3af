"""Who may call what: every RPC against every kind of caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from conftest import ServerHandle, admin_md, bearer
from support import build, error_param, generate, rpc_error

from keyservice.v1 import key_service_pb2 as pb

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED

TEAM = "alpha"
CALLERS = (
    "none",
    "malformed",
    "unknown",
    "expired",
    "blocked",
    "other_team",
    "self",
    "team_manager",
    "admin",
)

# What a caller may do to key T of team alpha (or, for Generate and List, to
# team alpha). The five bad credentials are refused alike for every RPC.
EXPECTED = {
    "Generate": {"other_team": DENIED, "self": DENIED},
    "Regenerate": {"other_team": DENIED, "self": OK},
    "Update": {"other_team": DENIED, "self": DENIED},
    "Delete": {"other_team": DENIED, "self": DENIED},
    "Info": {"other_team": DENIED, "self": OK},
    "List": {"other_team": DENIED, "self": DENIED},
    "Block": {"other_team": DENIED, "self": DENIED},
    "Unblock": {"other_team": DENIED, "self": DENIED},
    "Verify": {"other_team": DENIED, "self": OK},
}


def expected_code(rpc: str, caller: str) -> grpc.StatusCode:
    if caller in ("none", "malformed", "unknown", "expired", "blocked"):
        return UNAUTHENTICATED
    return EXPECTED[rpc].get(caller, OK)


Call = Callable[[Any, str, Any], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "Generate": lambda stub, target, md: stub.Generate(
        pb.GenerateRequest(team_id=TEAM), metadata=md
    ),
    "Regenerate": lambda stub, target, md: stub.Regenerate(
        pb.RegenerateRequest(key=target), metadata=md
    ),
    "Update": lambda stub, target, md: stub.Update(
        build(pb.UpdateRequest, key=target, key_alias="changed"), metadata=md
    ),
    "Delete": lambda stub, target, md: stub.Delete(
        pb.DeleteRequest(keys=[target]), metadata=md
    ),
    "Info": lambda stub, target, md: stub.Info(pb.InfoRequest(key=target), metadata=md),
    "List": lambda stub, target, md: stub.List(
        pb.ListRequest(team_id=TEAM), metadata=md
    ),
    "Block": lambda stub, target, md: stub.Block(
        pb.BlockRequest(key=target), metadata=md
    ),
    "Unblock": lambda stub, target, md: stub.Unblock(
        pb.UnblockRequest(key=target), metadata=md
    ),
    "Verify": lambda stub, target, md: stub.Verify(
        pb.VerifyRequest(key=target), metadata=md
    ),
}


async def caller_metadata(
    server: ServerHandle, stub: Any, caller: str, target: str
) -> tuple[tuple[str, str], ...]:
    admin = admin_md(server)
    manager_permissions = {"manage_team_keys": True}
    if caller == "none":
        return ()
    if caller == "malformed":
        return (("authorization", "Basic dXNlcjpwYXNz"),)
    if caller == "unknown":
        return bearer("sk-this-key-was-never-issued-0000")
    if caller == "expired":
        key = (await generate(stub, admin, team_id=TEAM, duration="1h")).key.key
        server.clock.advance(3601)
        return bearer(key)
    if caller == "blocked":
        key = (await generate(stub, admin, team_id=TEAM)).key.key
        await stub.Block(pb.BlockRequest(key=key), metadata=admin)
        return bearer(key)
    if caller == "other_team":
        other = await generate(
            stub, admin, team_id="beta", permissions=manager_permissions
        )
        return bearer(other.key.key)
    if caller == "self":
        return bearer(target)
    if caller == "team_manager":
        manager = await generate(
            stub, admin, team_id=TEAM, permissions=manager_permissions
        )
        return bearer(manager.key.key)
    return admin


@pytest.mark.parametrize("rpc", sorted(CALLS))
async def test_every_caller_gets_the_expected_code(
    server: ServerHandle, stub: Any, rpc: str
) -> None:
    outcomes: dict[str, grpc.StatusCode] = {}
    for caller in CALLERS:
        target = (await generate(stub, admin_md(server), team_id=TEAM)).key.key
        metadata = await caller_metadata(server, stub, caller, target)
        try:
            await CALLS[rpc](stub, target, metadata)
            outcomes[caller] = OK
        except grpc.aio.AioRpcError as exc:
            outcomes[caller] = exc.code()
            assert target not in (exc.details() or "")

    assert outcomes == {caller: expected_code(rpc, caller) for caller in CALLERS}


async def test_team_manager_cannot_move_a_key_to_another_team(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    manager = (
        await generate(
            stub, admin, team_id=TEAM, permissions={"manage_team_keys": True}
        )
    ).key.key
    target = (await generate(stub, admin, team_id=TEAM)).key.key

    error = await rpc_error(
        stub.Update(
            build(pb.UpdateRequest, key=target, team_id="beta"),
            metadata=bearer(manager),
        )
    )

    assert error.code() == DENIED
    info = await stub.Info(pb.InfoRequest(key=target), metadata=admin)
    assert info.info.team_id == TEAM


async def test_team_manager_cannot_grant_more_than_it_holds(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    manager = (
        await generate(
            stub,
            admin,
            team_id=TEAM,
            max_budget=10,
            models=["gpt-4"],
            permissions={"manage_team_keys": True},
        )
    ).key.key
    as_manager = bearer(manager)

    within = {"max_budget": 5, "models": ["gpt-4"]}
    for name, value in (
        ("max_budget", 11),
        ("models", ["gpt-4", "claude-v1"]),
        ("permissions", {"admin_everything": True}),
    ):
        request = build(pb.GenerateRequest, **{**within, name: value})
        error = await rpc_error(stub.Generate(request, metadata=as_manager))
        assert (error.code(), error_param(error)) == (DENIED, name)

    # Without a budget the new key would be unlimited: more than 10.
    error = await rpc_error(stub.Generate(pb.GenerateRequest(), metadata=as_manager))
    assert error.code() == DENIED
    created = await stub.Generate(
        build(pb.GenerateRequest, max_budget=5, models=["gpt-4"]), metadata=as_manager
    )
    assert (created.key.team_id, created.key.max_budget) == (TEAM, 5)


async def test_team_manager_lists_only_its_own_team(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    manager = await generate(
        stub, admin, team_id=TEAM, permissions={"manage_team_keys": True}
    )
    await generate(stub, admin, team_id=TEAM)
    await generate(stub, admin, team_id="beta")

    listed = await stub.List(pb.ListRequest(), metadata=bearer(manager.key.key))

    assert listed.total_count == 2
    everything = await stub.List(pb.ListRequest(), metadata=admin)
    assert everything.total_count == 3


async def _manager(server: ServerHandle, stub: Any, **settings: Any) -> str:
    settings.setdefault("permissions", {"manage_team_keys": True})
    created = await generate(stub, admin_md(server), team_id=TEAM, **settings)
    return str(created.key.key)


async def test_a_team_manager_acting_on_itself_is_held_to_the_self_rules(
    server: ServerHandle, stub: Any
) -> None:
    manager = await _manager(server, stub, max_budget=10, duration="1h")
    as_manager = bearer(manager)

    for call in (
        stub.Update(build(pb.UpdateRequest, key=manager, spend=0), metadata=as_manager),
        stub.Update(
            build(pb.UpdateRequest, key=manager, duration="-1"), metadata=as_manager
        ),
        stub.Regenerate(
            build(pb.RegenerateRequest, key=manager, max_budget=10),
            metadata=as_manager,
        ),
        stub.Unblock(pb.UnblockRequest(key=manager), metadata=as_manager),
        stub.Delete(pb.DeleteRequest(keys=[manager]), metadata=as_manager),
    ):
        assert (await rpc_error(call)).code() == DENIED

    info = await stub.Info(pb.InfoRequest(key=manager), metadata=admin_md(server))
    assert (info.info.max_budget, info.info.duration) == (10, "1h")


async def test_a_team_manager_cannot_reset_spend_or_make_keys_that_outlive_it(
    server: ServerHandle, stub: Any
) -> None:
    manager = await _manager(server, stub, duration="1h")
    as_manager = bearer(manager)
    target = (
        await generate(stub, admin_md(server), team_id=TEAM, spend=5, duration="30m")
    ).key.key

    error = await rpc_error(
        stub.Update(build(pb.UpdateRequest, key=target, spend=0), metadata=as_manager)
    )
    assert (error.code(), error_param(error)) == (DENIED, "spend")
    for duration in ("-1", "2h"):
        error = await rpc_error(
            stub.Generate(
                build(pb.GenerateRequest, duration=duration), metadata=as_manager
            )
        )
        assert (error.code(), error_param(error)) == (DENIED, "duration")
    # Unsent, a new key never expires: longer than the manager lives.
    error = await rpc_error(stub.Generate(pb.GenerateRequest(), metadata=as_manager))
    assert (error.code(), error_param(error)) == (DENIED, "duration")

    created = await stub.Generate(
        build(pb.GenerateRequest, duration="30m"), metadata=as_manager
    )
    assert created.key.team_id == TEAM
    # Rotation renews a key's window only while that fits the manager's life.
    server.clock.advance(40 * 60)
    error = await rpc_error(
        stub.Regenerate(pb.RegenerateRequest(key=target), metadata=as_manager)
    )
    assert (error.code(), error_param(error)) == (DENIED, "duration")


async def test_a_team_manager_passes_on_its_model_limits_and_restrictions(
    server: ServerHandle, stub: Any
) -> None:
    manager = await _manager(
        server,
        stub,
        model_rpm_limit={"gpt-4": 100},
        model_tpm_limit={"gpt-4": 1000},
        model_max_budget={"gpt-4": {"budget_limit": 1.0}},
        guardrails=["pii-mask"],
        enforced_params=["user"],
    )
    as_manager = bearer(manager)
    within: dict[str, Any] = {
        "model_rpm_limit": {"gpt-4": 50},
        "model_tpm_limit": {"gpt-4": 1000, "claude-v1": 5},
        "model_max_budget": {"gpt-4": {"budget_limit": 0.5}},
        "guardrails": ["pii-mask", "toxicity"],
        "enforced_params": ["user"],
    }

    for name, value in (
        ("model_rpm_limit", {"gpt-4": 101}),
        ("model_rpm_limit", {}),
        ("model_tpm_limit", {"claude-v1": 5}),
        ("model_max_budget", {"gpt-4": {"budget_limit": 2.0}}),
        ("model_max_budget", {}),
        ("guardrails", ["toxicity"]),
        ("enforced_params", []),
    ):
        request = build(pb.GenerateRequest, **{**within, name: value})
        error = await rpc_error(stub.Generate(request, metadata=as_manager))
        assert (error.code(), error_param(error)) == (DENIED, name), (name, value)

    created = await stub.Generate(
        build(pb.GenerateRequest, **within), metadata=as_manager
    )
    error = await rpc_error(
        stub.Update(
            build(pb.UpdateRequest, key=created.key.key, guardrails=[]),
            metadata=as_manager,
        )
    )
    assert (error.code(), error_param(error)) == (DENIED, "guardrails")
