"""Generate, Update, Delete, Info, List, Block, Unblock and Verify."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import grpc
from conftest import ServerHandle, admin_md, bearer
from support import as_json, build, generate, rpc_error

from keyservice.v1 import key_service_pb2 as pb


async def test_generate_shows_the_secret_once_and_stores_its_settings(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)

    created = await generate(
        stub, admin, key_alias="ci", models=["gpt-4"], duration="30d", max_budget=9
    )

    key = created.key
    assert key.key.startswith("sk-") and len(key.key) >= 3 + 43
    assert key.expires.ToDatetime() == server.clock.now() + dt.timedelta(days=30)
    info = await stub.Info(pb.InfoRequest(key=key.key), metadata=admin)
    assert info.info.key == info.key == key.token_id
    assert key.key not in str(info)
    assert (info.info.key_alias, list(info.info.models)) == ("ci", ["gpt-4"])


async def test_update_changes_only_the_fields_sent(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = await generate(
        stub, admin, key_alias="a", tpm_limit=5, metadata={"x": 1}, blocked=False
    )

    updated = await stub.Update(
        build(pb.UpdateRequest, key=created.key.key, tpm_limit=0, metadata={}),
        metadata=admin,
    )

    assert (updated.key.tpm_limit, as_json(updated.key)["metadata"]) == (0, {})
    assert updated.key.key_alias == "a"
    assert updated.key.token_id == created.key.token_id
    assert (
        await stub.Verify(pb.VerifyRequest(key=created.key.key), metadata=admin)
    ).valid


async def test_delete_by_key_and_by_alias(server: ServerHandle, stub: Any) -> None:
    admin = admin_md(server)
    first = await generate(stub, admin)
    second = await generate(stub, admin, key_alias="old-bot")
    kept = await generate(stub, admin, key_alias="keep")

    deleted = await stub.Delete(
        pb.DeleteRequest(keys=[first.key.key], key_aliases=["old-bot"]), metadata=admin
    )

    assert sorted(deleted.deleted_keys) == sorted(
        [first.key.token_id, second.key.token_id]
    )
    for gone in (first, second):
        verdict = await stub.Verify(pb.VerifyRequest(key=gone.key.key), metadata=admin)
        assert verdict.reason == pb.VERIFY_REASON_NOT_FOUND
    assert (await stub.Verify(pb.VerifyRequest(key=kept.key.key), metadata=admin)).valid


async def test_info_without_a_key_describes_the_caller(
    server: ServerHandle, stub: Any
) -> None:
    created = await generate(stub, admin_md(server), key_alias="me")

    info = await stub.Info(pb.InfoRequest(), metadata=bearer(created.key.key))

    assert (info.info.id, info.info.key_alias) == (created.key.id, "me")


async def test_list_filters_pages_and_sorts(server: ServerHandle, stub: Any) -> None:
    admin = admin_md(server)
    for index in range(5):
        await generate(stub, admin, user_id="u1", key_alias=f"k{index}")
        server.clock.advance(1)
    await generate(stub, admin, user_id="u2")

    page = await stub.List(
        pb.ListRequest(
            user_id="u1",
            size=2,
            page=2,
            sort_by="key_alias",
            sort_order="asc",
            return_full_object=True,
        ),
        metadata=admin,
    )

    assert (page.total_count, page.current_page, page.total_pages) == (5, 2, 3)
    aliases = [entry.struct_value["key_alias"] for entry in page.keys]
    assert aliases == ["k2", "k3"]
    full = page.keys[0].struct_value
    assert full["max_budget"] is None and "token_id" in full
    ids = await stub.List(pb.ListRequest(user_id="u1"), metadata=admin)
    assert all(len(entry.string_value) == 64 for entry in ids.keys)
    newest_first = await stub.List(pb.ListRequest(user_id="u1", size=1), metadata=admin)
    info = await stub.Info(
        pb.InfoRequest(key=newest_first.keys[0].string_value), metadata=admin
    )
    assert info.info.key_alias == "k4"
    by_hash = await stub.List(
        pb.ListRequest(key_hash=newest_first.keys[0].string_value), metadata=admin
    )
    assert by_hash.total_count == 1


async def test_block_and_unblock(server: ServerHandle, stub: Any) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin)

    blocked = await stub.Block(pb.BlockRequest(key=created.key.key), metadata=admin)

    assert blocked.key.blocked
    verdict = await stub.Verify(pb.VerifyRequest(key=created.key.key), metadata=admin)
    assert (verdict.valid, verdict.reason) == (False, pb.VERIFY_REASON_BLOCKED)
    error = await rpc_error(
        stub.Info(pb.InfoRequest(), metadata=bearer(created.key.key))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    unblocked = await stub.Unblock(
        pb.UnblockRequest(key=created.key.token_id), metadata=admin
    )
    assert not unblocked.key.blocked
    assert (
        await stub.Verify(pb.VerifyRequest(key=created.key.key), metadata=admin)
    ).valid


async def test_verify_reports_why_a_key_may_not_be_used(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    spent = await generate(stub, admin, max_budget=10, spend=10)
    expiring = await generate(stub, admin, duration="1m")

    over = await stub.Verify(pb.VerifyRequest(key=spent.key.key), metadata=admin)
    assert (over.valid, over.reason) == (False, pb.VERIFY_REASON_OVER_BUDGET)
    assert over.info.id == spent.key.id
    server.clock.advance(60)
    expired = await stub.Verify(pb.VerifyRequest(key=expiring.key.key), metadata=admin)
    assert (expired.valid, expired.reason) == (False, pb.VERIFY_REASON_EXPIRED)
    unknown = await stub.Verify(
        pb.VerifyRequest(key="sk-never-issued-to-anyone-000"), metadata=admin
    )
    assert (unknown.valid, unknown.reason) == (False, pb.VERIFY_REASON_NOT_FOUND)
    assert not unknown.HasField("info")


async def test_x_litellm_api_key_header_authenticates(
    server: ServerHandle, stub: Any
) -> None:
    listed = await stub.List(
        pb.ListRequest(), metadata=(("x-litellm-api-key", server.master_key),)
    )

    assert listed.total_count == 0


async def test_spend_resets_when_the_budget_window_ends(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin, max_budget=10, spend=10, budget_duration="1h")
    verdict = await stub.Verify(pb.VerifyRequest(key=created.key.key), metadata=admin)
    assert verdict.reason == pb.VERIFY_REASON_OVER_BUDGET

    server.clock.advance(3600)

    # Usable at once, before any sweep has run...
    assert (
        await stub.Verify(pb.VerifyRequest(key=created.key.key), metadata=admin)
    ).valid
    # ...and the sweep brings the stored spend and the next reset up to date.
    assert await server.running.keys.reset_due_budgets() == 1
    info = await stub.Info(pb.InfoRequest(key=created.key.key), metadata=admin)
    assert info.info.spend == 0
    assert info.info.budget_reset_at.ToDatetime() == server.clock.now() + dt.timedelta(
        hours=1
    )
    assert await server.running.keys.reset_due_budgets() == 0


async def test_stale_idempotent_replays_are_forgotten(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    created = await generate(stub, admin)
    await stub.Regenerate(
        pb.RegenerateRequest(key=created.key.key),
        metadata=(*admin, ("idempotency-key", "once")),
    )

    assert await server.running.keys.forget_stale_replays() == 0
    server.clock.advance(24 * 3600)
    assert await server.running.keys.forget_stale_replays() == 1


async def test_retried_generate_with_same_idempotency_key_creates_one_key(
    server: ServerHandle, stub: Any
) -> None:
    admin = admin_md(server)
    retry_md = (*admin, ("idempotency-key", "create-ci-bot"))
    request = build(pb.GenerateRequest, key_alias="ci-bot")

    first, second = await asyncio.gather(
        stub.Generate(request, metadata=retry_md),
        stub.Generate(request, metadata=retry_md),
    )
    third = await stub.Generate(request, metadata=retry_md)

    assert first == second == third
    listed = await stub.List(pb.ListRequest(key_alias="ci-bot"), metadata=admin)
    assert listed.total_count == 1
    other = build(pb.GenerateRequest, key_alias="another")
    error = await rpc_error(stub.Generate(other, metadata=retry_md))
    assert error.code() == grpc.StatusCode.ABORTED
