"""Regenerate: rotation, settings in the same call, grace periods, races and
idempotent retries."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import grpc
import pytest
from conftest import ServerHandle, admin_md, bearer
from sqlalchemy import func, select
from support import as_json, build, generate, rpc_error

from keyserver import db
from keyserver.models import AuditEvent
from keyservice.v1 import key_service_pb2 as pb

# A key that starts with a value in every setting, so that a sent zero, false
# or empty value visibly replaces something.
FULL_KEY: dict[str, Any] = {
    "key_alias": "billing-bot",
    "user_id": "user-1",
    "team_id": "team-1",
    "models": ["gpt-4", "gpt-3.5-turbo"],
    "tags": ["prod"],
    "spend": 3.5,
    "max_budget": 50.0,
    "model_max_budget": {"gpt-4": {"budget_limit": 10.0, "time_period": "30d"}},
    "budget_duration": "30d",
    "soft_budget": 40.0,
    "max_parallel_requests": 4,
    "metadata": {"app": "billing"},
    "tpm_limit": 1000,
    "rpm_limit": 60,
    "model_rpm_limit": {"gpt-4": 10},
    "model_tpm_limit": {"gpt-4": 500},
    "allowed_cache_controls": ["no-cache"],
    "duration": "7d",
    "permissions": {"can_stream": True},
    "guardrails": ["pii-mask"],
    "blocked": True,
}

# (setting, value sent, what the key then shows for it); each is sent alone.
ROUND_TRIPS: list[tuple[str, Any, Any]] = [
    ("key_alias", "renamed", "renamed"),
    ("key_alias", "", ""),
    ("user_id", "user-2", "user-2"),
    ("user_id", "", ""),
    ("team_id", "team-2", "team-2"),
    ("team_id", "", ""),
    ("models", ["claude-v1"], ["claude-v1"]),
    ("models", [], []),
    ("tags", ["staging", "eu"], ["staging", "eu"]),
    ("tags", [], []),
    ("spend", 7.25, 7.25),
    ("spend", 0, 0.0),
    ("max_budget", 100, 100.0),
    ("max_budget", 0, 0.0),
    (
        "model_max_budget",
        {"gpt-4": {"budget_limit": 0.0005, "time_period": "1h"}},
        {"gpt-4": {"budget_limit": 0.0005, "time_period": "1h"}},
    ),
    ("model_max_budget", {}, {}),
    ("soft_budget", 20, 20.0),
    ("soft_budget", 0, 0.0),
    ("max_parallel_requests", 9, 9),
    ("max_parallel_requests", 0, 0),
    ("metadata", {"team": "core-infra"}, {"team": "core-infra"}),
    ("metadata", {}, {}),
    ("tpm_limit", 2000, 2000),
    ("tpm_limit", 0, 0),
    ("rpm_limit", 120, 120),
    ("rpm_limit", 0, 0),
    ("model_rpm_limit", {"claude-v1": 200}, {"claude-v1": 200}),
    ("model_rpm_limit", {}, {}),
    ("model_tpm_limit", {"claude-v1": 200000}, {"claude-v1": 200000}),
    ("model_tpm_limit", {}, {}),
    ("allowed_cache_controls", ["no-store"], ["no-store"]),
    ("allowed_cache_controls", [], []),
    ("permissions", {"can_batch": True}, {"can_batch": True}),
    ("permissions", {}, {}),
    ("guardrails", ["toxicity"], ["toxicity"]),
    ("guardrails", [], []),
    ("blocked", False, False),
    ("budget_duration", "1h", "1h"),
    ("duration", "15m", "15m"),
]

# Fields every rotation changes, whatever was sent.
ROTATION_FIELDS = {
    "key",
    "key_name",
    "token",
    "token_id",
    "updated_at",
    "rotation_count",
    "last_rotated_at",
    "expires",
}
# Fields that follow from another setting.
DERIVED = {"budget_duration": {"budget_reset_at"}, "duration": {"expires"}}


async def audit_count(server: ServerHandle, key_id: str, action: str) -> int:
    engine = db.create_engine(server.database_url)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.key_id == key_id, AuditEvent.action == action)
            )
            return int(count or 0)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("name", "sent", "shown"), ROUND_TRIPS)
async def test_regenerate_applies_a_setting_sent_alone_and_keeps_the_rest(
    server: ServerHandle, stub: Any, name: str, sent: Any, shown: Any
) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin, **FULL_KEY)
    before = as_json(created.key)

    response = await stub.Regenerate(
        build(pb.RegenerateRequest, key=created.key.key, **{name: sent}),
        metadata=admin,
    )

    after = as_json(response.key)
    assert after[name] == shown
    untouched = set(before) - ROTATION_FIELDS - {name} - DERIVED.get(name, set())
    assert {f: after[f] for f in untouched} == {f: before[f] for f in untouched}
    info = await stub.Info(pb.InfoRequest(key=response.key.key), metadata=admin)
    assert as_json(info.info)[name] == shown


async def test_regenerate_sets_expiry_and_budget_reset_from_durations(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin)
    now = server.clock.now()

    response = await stub.Regenerate(
        build(
            pb.RegenerateRequest,
            key=created.key.key,
            duration="2w",
            budget_duration="1mo",
        ),
        metadata=admin,
    )

    assert response.key.expires.ToDatetime() == now + dt.timedelta(weeks=2)
    reset = response.key.budget_reset_at.ToDatetime()
    assert (reset.year * 12 + reset.month) - (now.year * 12 + now.month) == 1

    never = await stub.Regenerate(
        build(pb.RegenerateRequest, key=response.key.key, duration="-1"),
        metadata=admin,
    )
    assert not never.key.HasField("expires")
    assert not never.key.HasField("duration")


async def test_an_empty_budget_duration_switches_spend_resets_off(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin, budget_duration="30d", spend=4)

    response = await stub.Regenerate(
        build(pb.RegenerateRequest, key=created.key.key, budget_duration=""),
        metadata=admin,
    )

    assert created.key.HasField("budget_reset_at")
    assert not response.key.HasField("budget_duration")
    assert not response.key.HasField("budget_reset_at")
    assert response.key.spend == 4


async def test_regenerate_with_no_fields_keeps_every_setting(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin, **FULL_KEY)

    response = await stub.Regenerate(
        pb.RegenerateRequest(key=created.key.token_id), metadata=admin
    )

    before, after = as_json(created.key), as_json(response.key)
    kept = set(before) - ROTATION_FIELDS
    assert {f: after[f] for f in kept} == {f: before[f] for f in kept}
    assert response.key.id == created.key.id
    assert response.key.key.startswith("sk-")
    assert response.key.key != created.key.key
    assert response.key.token_id != created.key.token_id
    assert response.key.key_name == f"sk-...{response.key.key[-4:]}"
    assert response.key.rotation_count == 1


async def test_old_secret_stops_working_at_once_without_grace_period(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    manager = {"team_id": "t", "permissions": {"manage_team_keys": True}}
    old = (await generate(stub, admin, **manager)).key.key

    new = (await stub.Regenerate(pb.RegenerateRequest(key=old), metadata=admin)).key.key

    verdict = await stub.Verify(pb.VerifyRequest(key=old), metadata=admin)
    assert (verdict.valid, verdict.reason) == (False, pb.VERIFY_REASON_NOT_FOUND)
    # Even a team manager's old secret opens no call at all.
    as_old = bearer(old)
    for call in (
        stub.Info(pb.InfoRequest(), metadata=as_old),
        stub.Verify(pb.VerifyRequest(key=old), metadata=as_old),
        stub.Regenerate(pb.RegenerateRequest(key=new), metadata=as_old),
        stub.Generate(pb.GenerateRequest(), metadata=as_old),
        stub.Update(build(pb.UpdateRequest, key=new, tags=[]), metadata=as_old),
        stub.Delete(pb.DeleteRequest(keys=[new]), metadata=as_old),
        stub.List(pb.ListRequest(), metadata=as_old),
        stub.Block(pb.BlockRequest(key=new), metadata=as_old),
        stub.Unblock(pb.UnblockRequest(key=new), metadata=as_old),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.UNAUTHENTICATED
    verdict = await stub.Verify(pb.VerifyRequest(key=new), metadata=bearer(new))
    assert (verdict.valid, verdict.reason) == (True, pb.VERIFY_REASON_OK)
    info = await stub.Info(pb.InfoRequest(), metadata=bearer(new))
    assert info.info.token_id == info.key


async def test_regenerate_with_grace_period_keeps_old_key_valid_until_deadline(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    old = (await generate(stub, admin)).key.key

    new = (
        await stub.Regenerate(
            pb.RegenerateRequest(key=old, grace_period="1h"), metadata=admin
        )
    ).key.key

    server.clock.advance(3599)
    verdict = await stub.Verify(pb.VerifyRequest(key=old), metadata=admin)
    assert (verdict.valid, verdict.in_grace_period) == (True, True)
    info = await stub.Info(pb.InfoRequest(), metadata=bearer(old))
    assert info.info.key_name == f"sk-...{new[-4:]}"

    server.clock.advance(1)
    verdict = await stub.Verify(pb.VerifyRequest(key=old), metadata=admin)
    assert (verdict.valid, verdict.reason) == (False, pb.VERIFY_REASON_NOT_FOUND)
    error = await rpc_error(stub.Info(pb.InfoRequest(), metadata=bearer(old)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    verdict = await stub.Verify(pb.VerifyRequest(key=new), metadata=admin)
    assert verdict.valid


async def test_a_revoke_now_rotation_ends_earlier_grace_periods(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    first = (await generate(stub, admin)).key.key
    second = (
        await stub.Regenerate(
            pb.RegenerateRequest(key=first, grace_period="1h"), metadata=admin
        )
    ).key.key

    third = (
        await stub.Regenerate(pb.RegenerateRequest(key=second), metadata=admin)
    ).key.key

    for retired in (first, second):
        verdict = await stub.Verify(pb.VerifyRequest(key=retired), metadata=admin)
        assert (verdict.valid, verdict.reason) == (False, pb.VERIFY_REASON_NOT_FOUND)
    assert (await stub.Verify(pb.VerifyRequest(key=third), metadata=admin)).valid


async def test_a_later_grace_period_shortens_an_earlier_longer_one(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    first = (await generate(stub, admin)).key.key
    second = (
        await stub.Regenerate(
            pb.RegenerateRequest(key=first, grace_period="1d"), metadata=admin
        )
    ).key.key
    await stub.Regenerate(
        pb.RegenerateRequest(key=second, grace_period="1h"), metadata=admin
    )

    server.clock.advance(3599)
    assert (await stub.Verify(pb.VerifyRequest(key=first), metadata=admin)).valid
    server.clock.advance(1)
    for retired in (first, second):
        verdict = await stub.Verify(pb.VerifyRequest(key=retired), metadata=admin)
        assert not verdict.valid


async def test_a_retired_secret_in_its_grace_period_only_verifies_and_describes(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    old = (await generate(stub, admin, team_id="t")).key.key
    new = await stub.Regenerate(
        pb.RegenerateRequest(key=old, grace_period="1h"), metadata=admin
    )
    as_old = bearer(old)

    info = await stub.Info(pb.InfoRequest(), metadata=as_old)
    assert info.info.id == new.key.id
    verdict = await stub.Verify(pb.VerifyRequest(key=old), metadata=as_old)
    assert verdict.valid and verdict.in_grace_period

    # Holding the old secret must not be enough to take the key over.
    error = await rpc_error(
        stub.Regenerate(pb.RegenerateRequest(key=new.key.token_id), metadata=as_old)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await rpc_error(
        stub.Regenerate(pb.RegenerateRequest(key=old), metadata=as_old)
    )
    assert error.code() == grpc.StatusCode.ABORTED  # names a rotated secret
    assert (await stub.Verify(pb.VerifyRequest(key=new.key.key), metadata=admin)).valid


async def test_a_key_rotating_itself_keeps_its_expiry(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    secret = (await generate(stub, admin, duration="1h")).key.key
    expires = (
        await stub.Info(pb.InfoRequest(key=secret), metadata=admin)
    ).info.expires.ToDatetime()

    # Rotating itself just before it expires must not buy it another hour.
    for _ in range(3):
        server.clock.advance(50 * 60)
        if server.clock.now() >= expires:
            break
        rotated = await stub.Regenerate(
            pb.RegenerateRequest(key=secret), metadata=bearer(secret)
        )
        assert rotated.key.expires.ToDatetime() == expires
        secret = rotated.key.key

    verdict = await stub.Verify(pb.VerifyRequest(key=secret), metadata=admin)
    assert (verdict.valid, verdict.reason) == (False, pb.VERIFY_REASON_EXPIRED)
    # The admin's rotation gives the expired key a fresh window, as before.
    renewed = await stub.Regenerate(pb.RegenerateRequest(key=secret), metadata=admin)
    assert (
        await stub.Verify(pb.VerifyRequest(key=renewed.key.key), metadata=admin)
    ).valid


async def test_the_master_key_cannot_become_a_stored_key(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    existing = (await generate(stub, admin)).key.key

    for call in (
        stub.Generate(pb.GenerateRequest(key=server.master_key), metadata=admin),
        stub.Regenerate(
            pb.RegenerateRequest(key=existing, new_key=server.master_key),
            metadata=admin,
        ),
    ):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
        assert server.master_key not in (error.details() or "")
    assert (await stub.Verify(pb.VerifyRequest(key=existing), metadata=admin)).valid


async def test_a_key_can_rotate_itself_and_only_change_harmless_settings(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    old = (await generate(stub, admin, max_budget=5)).key.key

    denied = await rpc_error(
        stub.Regenerate(
            build(pb.RegenerateRequest, key=old, max_budget=500), metadata=bearer(old)
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "max_budget" in (denied.details() or "")

    rotated = await stub.Regenerate(
        build(pb.RegenerateRequest, key=old, key_alias="mine"), metadata=bearer(old)
    )
    assert rotated.key.key_alias == "mine"
    assert rotated.key.max_budget == 5


async def test_concurrent_regenerates_of_one_key_let_exactly_one_win(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = (await generate(stub, admin)).key

    results = await asyncio.gather(
        *(
            stub.Regenerate(
                build(pb.RegenerateRequest, key=created.key, key_alias=f"r{i}"),
                metadata=admin,
            )
            for i in range(50)
        ),
        return_exceptions=True,
    )

    wins = [r for r in results if isinstance(r, pb.RegenerateResponse)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1
    assert len(losses) == 49
    assert {e.code() for e in losses} == {grpc.StatusCode.ABORTED}
    winner = wins[0].key
    verdict = await stub.Verify(pb.VerifyRequest(key=winner.key), metadata=admin)
    assert verdict.valid
    info = await stub.Info(pb.InfoRequest(key=winner.token_id), metadata=admin)
    assert (info.info.key_alias, info.info.rotation_count) == (winner.key_alias, 1)
    assert await audit_count(server, created.id, "regenerate") == 1


async def test_retried_regenerate_with_same_idempotency_key_replays_response(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = (await generate(stub, admin)).key
    request = build(pb.RegenerateRequest, key=created.key, max_budget=100)
    retry_md = (*admin, ("idempotency-key", "rotate-42"))

    first = await stub.Regenerate(request, metadata=retry_md)
    second = await stub.Regenerate(request, metadata=retry_md)

    assert second == first
    info = await stub.Info(pb.InfoRequest(key=first.key.token_id), metadata=admin)
    assert info.info.rotation_count == 1
    assert await audit_count(server, created.id, "regenerate") == 1

    other = build(pb.RegenerateRequest, key=created.key, max_budget=200)
    error = await rpc_error(stub.Regenerate(other, metadata=retry_md))
    assert error.code() == grpc.StatusCode.ABORTED
    assert "idempotency" in (error.details() or "")
    info = await stub.Info(pb.InfoRequest(key=first.key.token_id), metadata=admin)
    assert (info.info.rotation_count, info.info.max_budget) == (1, 100)


async def test_self_rotation_retry_replays_even_though_old_secret_is_revoked(
    server: ServerHandle, stub: Any
) -> None:
    old = (await generate(stub, admin_md(server))).key.key
    retry_md = (*bearer(old), ("idempotency-key", "self-rotate"))
    request = pb.RegenerateRequest(key=old)

    first = await stub.Regenerate(request, metadata=retry_md)
    second = await stub.Regenerate(request, metadata=retry_md)

    assert second.key.key == first.key.key
    other_md = (*bearer(old), ("idempotency-key", "another"))
    error = await rpc_error(stub.Regenerate(request, metadata=other_md))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_idempotent_replays_expire_after_a_day(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = (await generate(stub, admin)).key
    retry_md = (*admin, ("idempotency-key", "daily"))

    first = await stub.Regenerate(
        pb.RegenerateRequest(key=created.token_id), metadata=retry_md
    )
    server.clock.advance(24 * 3600)
    late = await rpc_error(
        stub.Regenerate(pb.RegenerateRequest(key=created.token_id), metadata=retry_md)
    )

    # The replay is gone, so the stale token id is refused as rotated.
    assert late.code() == grpc.StatusCode.ABORTED
    assert first.key.key not in (late.details() or "")


async def test_an_idempotency_key_can_be_used_again_once_its_day_is_over(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    retry_md = (*admin, ("idempotency-key", "nightly-rotation"))
    first = (await generate(stub, admin)).key

    await stub.Regenerate(pb.RegenerateRequest(key=first.key), metadata=retry_md)
    server.clock.advance(24 * 3600 + 1)
    second = (await generate(stub, admin)).key
    # Before the sweep (once a minute) has removed the old record, too.
    rotated = await stub.Regenerate(
        pb.RegenerateRequest(key=second.key), metadata=retry_md
    )

    assert rotated.key.id == second.id
    assert rotated.key.rotation_count == 1


@pytest.mark.parametrize("change", ["block", "rotate", "delete"])
async def test_a_replay_is_refused_once_the_key_has_changed(
    server: ServerHandle, stub: Any, change: str
) -> None:
    admin = admin_md(server)
    old = (await generate(stub, admin)).key.key
    retry_md = (*bearer(old), ("idempotency-key", "3f1c0e2a-self-rotation"))
    request = pb.RegenerateRequest(key=old)
    first = await stub.Regenerate(request, metadata=retry_md)

    if change == "block":
        await stub.Block(pb.BlockRequest(key=first.key.key), metadata=admin)
    elif change == "rotate":
        await stub.Regenerate(pb.RegenerateRequest(key=first.key.key), metadata=admin)
    else:
        await stub.Delete(pb.DeleteRequest(keys=[first.key.key]), metadata=admin)
    error = await rpc_error(stub.Regenerate(request, metadata=retry_md))

    expected = (
        grpc.StatusCode.NOT_FOUND if change == "delete" else grpc.StatusCode.ABORTED
    )
    assert error.code() == expected
    assert first.key.key not in (error.details() or "")


async def test_expired_key_with_stored_duration_regenerates_into_live_key(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = (await generate(stub, admin, duration="1h")).key
    server.clock.advance(2 * 3600)
    verdict = await stub.Verify(pb.VerifyRequest(key=created.key), metadata=admin)
    assert verdict.reason == pb.VERIFY_REASON_EXPIRED

    rotated = (
        await stub.Regenerate(pb.RegenerateRequest(key=created.key), metadata=admin)
    ).key

    assert rotated.expires.ToDatetime() == server.clock.now() + dt.timedelta(hours=1)
    verdict = await stub.Verify(pb.VerifyRequest(key=rotated.key), metadata=admin)
    assert (verdict.valid, verdict.reason) == (True, pb.VERIFY_REASON_OK)


async def test_new_key_replaces_secret_with_callers_choice(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = (await generate(stub, admin)).key
    chosen = "sk-chosen-by-the-caller-0001"

    rotated = await stub.Regenerate(
        pb.RegenerateRequest(key=created.key, new_key=chosen), metadata=admin
    )

    assert rotated.key.key == chosen
    assert (await stub.Verify(pb.VerifyRequest(key=chosen), metadata=admin)).valid
    other = (await generate(stub, admin)).key
    taken = await rpc_error(
        stub.Regenerate(
            pb.RegenerateRequest(key=other.key, new_key=chosen), metadata=admin
        )
    )
    assert taken.code() == grpc.StatusCode.ALREADY_EXISTS
    assert chosen not in (taken.details() or "")
    assert (await stub.Verify(pb.VerifyRequest(key=other.key), metadata=admin)).valid
