"""POST /key/{key}/regenerate as legacy clients call it, through the real Envoy."""

from __future__ import annotations

import asyncio
import datetime as dt
import pathlib
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import ServerHandle
from envoy_harness import assert_legacy_error, rest_client

from keyservice.v1 import key_pb2
from keyservice.v1.key_service_pb2 import RegenerateRequest

# The example call of the legacy API's page for this endpoint, as it is sent:
# `--data-raw` passes these bytes unchanged.
EXAMPLE_BODY = (
    b"{\n"
    b'    "max_budget": 100,\n'
    b'    "metadata": {"team": "core-infra"},\n'
    b'    "models": ["gpt-4", "gpt-3.5-turbo"]\n'
    b"}"
)
# The keys of that page's example response.
EXAMPLE_RESPONSE_KEYS = {
    "key_alias",
    "duration",
    "models",
    "spend",
    "max_budget",
    "user_id",
    "team_id",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "allowed_cache_controls",
    "guardrails",
    "blocked",
    "key",
    "budget_id",
    "tags",
    "enforced_params",
    "key_name",
    "expires",
    "token_id",
    "token",
}
# The documented additions: the other fields of keyservice.v1.Key.
KEY_FIELDS = {field.name for field in key_pb2.Key.DESCRIPTOR.fields}
# As the legacy API writes times: always milliseconds, always Z.
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
async def rest(
    server: ServerHandle, tmp_path: pathlib.Path, issued_secrets: set[str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with rest_client(server.port, tmp_path / "envoy", issued_secrets) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


async def generate(
    rest: httpx.AsyncClient, server: ServerHandle, **fields: Any
) -> dict[str, Any]:
    response = await rest.post(
        "/key/generate", json=fields, headers=bearer(server.master_key)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def info(
    rest: httpx.AsyncClient, server: ServerHandle, key: str
) -> dict[str, Any]:
    response = await rest.get(
        "/key/info", params={"key": key}, headers=bearer(server.master_key)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["info"]
    return body


async def test_legacy_example_call_answers_every_example_field(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    old_key = "sk-legacy-example-call-0001"
    created = await generate(rest, server, key=old_key)

    response = await rest.post(
        f"/key/{old_key}/regenerate",
        content=EXAMPLE_BODY,
        headers={**bearer(server.master_key), "Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert EXAMPLE_RESPONSE_KEYS <= set(body)
    assert set(body) == KEY_FIELDS
    assert body["max_budget"] == 100
    assert body["metadata"] == {"team": "core-infra"}
    assert body["models"] == ["gpt-4", "gpt-3.5-turbo"]
    # Zero, false and empty values are printed; unset ones are null.
    assert body["spend"] == 0 and isinstance(body["spend"], int | float)
    assert body["blocked"] is False
    assert body["tags"] == [] and body["guardrails"] == []
    for unset in ("key_alias", "duration", "user_id", "team_id", "expires"):
        assert body[unset] is None, unset
    assert body["id"] == created["id"]
    assert body["key"].startswith("sk-") and body["key"] != old_key
    assert body["key_name"] == f"sk-...{body['key'][-4:]}"
    assert body["token"] == body["token_id"] != created["token_id"]
    assert body["rotation_count"] == 1

    new_works = await rest.get("/key/info", headers=bearer(body["key"]))
    assert new_works.status_code == 200, new_works.text
    assert new_works.json()["key"] == body["token_id"]
    old_refused = await rest.get("/key/info", headers=bearer(old_key))
    assert old_refused.status_code == 401
    assert assert_legacy_error(old_refused)["type"] == "auth_error"


async def test_expires_is_rfc3339_utc_like_the_legacy_api(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    created = await generate(rest, server, key="sk-expiring-key-000000001")

    response = await rest.post(
        "/key/sk-expiring-key-000000001/regenerate",
        json={"duration": "30d"},
        headers=bearer(server.master_key),
    )

    assert response.status_code == 200, response.text
    expires = response.json()["expires"]
    assert RFC3339_UTC.match(expires), expires
    assert parse_time(expires) == server.clock.now() + dt.timedelta(days=30)
    assert created["expires"] is None


async def test_every_regenerate_parameter_round_trips(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    await generate(rest, server, key="sk-round-trip-key-0000001")
    settings: dict[str, Any] = {
        "key_alias": "round-trip",
        "user_id": "user-1",
        "team_id": "team-1",
        "models": ["gpt-4", "claude-v1"],
        "tags": ["prod", "eu"],
        "spend": 1.5,
        "max_budget": 50.25,
        "model_max_budget": {"gpt-4": {"budget_limit": 0.0005, "time_period": "30d"}},
        "budget_duration": "1h",
        "soft_budget": 40.5,
        "max_parallel_requests": 3,
        "metadata": {"team": "core-infra", "app": "app2", "n": 2, "nested": {"a": []}},
        "tpm_limit": 100000,
        "rpm_limit": 100,
        "model_rpm_limit": {"gpt-4": 100, "claude-v1": 200},
        "model_tpm_limit": {"gpt-4": 100000, "claude-v1": 200000},
        "allowed_cache_controls": ["no-cache", "no-store"],
        "duration": "7d",
        "permissions": {"allow_pii": True},
        "guardrails": ["pii-mask"],
        "blocked": True,
    }
    new_key = "sk-round-trip-new-key-0000001"
    every_parameter = {f.name for f in RegenerateRequest.DESCRIPTOR.fields}
    assert every_parameter == {*settings, "key", "new_key", "grace_period"}

    response = await rest.post(
        "/key/sk-round-trip-key-0000001/regenerate",
        json={**settings, "new_key": new_key, "grace_period": "1h"},
        headers=bearer(server.master_key),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key"] == new_key
    for name, value in settings.items():
        assert body[name] == value, name
    now = server.clock.now()
    assert parse_time(body["expires"]) == now + dt.timedelta(days=7)
    assert parse_time(body["budget_reset_at"]) == now + dt.timedelta(hours=1)
    stored = await info(rest, server, body["token_id"])
    for name, value in settings.items():
        assert stored[name] == value, name
    assert stored["key"] == body["token_id"]


async def test_omitted_and_null_fields_keep_their_values(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    settings: dict[str, Any] = {
        "key_alias": "kept",
        "max_budget": 5.5,
        "tpm_limit": 10,
        "models": ["gpt-4"],
        "metadata": {"team": "core-infra"},
        "blocked": False,
    }
    await generate(rest, server, key="sk-kept-values-key-000001", **settings)

    response = await rest.post(
        "/key/sk-kept-values-key-000001/regenerate",
        json={
            "key_alias": None,
            "max_budget": None,
            "models": None,
            "metadata": None,
            "rpm_limit": 7,
        },
        headers=bearer(server.master_key),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    for name, value in settings.items():
        assert body[name] == value, name
    assert body["rpm_limit"] == 7


async def test_sent_zero_false_and_empty_values_replace_stored_ones(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    await generate(
        rest,
        server,
        key="sk-zeroed-values-key-00001",
        key_alias="alias",
        max_budget=5.0,
        tpm_limit=10,
        models=["gpt-4"],
        blocked=True,
    )

    response = await rest.post(
        "/key/sk-zeroed-values-key-00001/regenerate",
        json={"key_alias": "", "max_budget": 0, "tpm_limit": 0, "models": []},
        headers=bearer(server.master_key),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key_alias"] == ""
    assert body["max_budget"] == 0
    assert body["tpm_limit"] == 0
    assert body["models"] == []
    assert body["blocked"] is True


async def test_retry_with_the_same_idempotency_key_answers_the_same_body(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    created = await generate(rest, server, key="sk-idempotent-key-0000001")
    headers = {**bearer(server.master_key), "Idempotency-Key": "retry-0001"}

    first = await rest.post(
        "/key/sk-idempotent-key-0000001/regenerate",
        content=EXAMPLE_BODY,
        headers={**headers, "Content-Type": "application/json"},
    )
    retry = await rest.post(
        "/key/sk-idempotent-key-0000001/regenerate",
        content=EXAMPLE_BODY,
        headers={**headers, "Content-Type": "application/json"},
    )

    assert first.status_code == 200, first.text
    assert retry.status_code == 200, retry.text
    assert retry.content == first.content
    stored = await info(rest, server, first.json()["token_id"])
    assert stored["id"] == created["id"]
    assert stored["rotation_count"] == 1


async def test_idempotency_key_reused_for_another_request_is_a_409(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    await generate(rest, server, key="sk-idempotent-other-00001")
    headers = {**bearer(server.master_key), "Idempotency-Key": "reused-0001"}
    first = await rest.post(
        "/key/sk-idempotent-other-00001/regenerate",
        json={"max_budget": 1},
        headers=headers,
    )
    assert first.status_code == 200, first.text

    other = await rest.post(
        "/key/sk-idempotent-other-00001/regenerate",
        json={"max_budget": 2},
        headers=headers,
    )

    assert other.status_code == 409, other.text
    assert assert_legacy_error(other)["type"] == "conflict_error"


async def test_regenerate_with_the_key_in_the_body(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    created = await generate(rest, server, key="sk-key-in-body-0000000001")

    response = await rest.post(
        "/key/regenerate",
        json={"key": "sk-key-in-body-0000000001", "key_alias": "by-body"},
        headers=bearer(server.master_key),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == created["id"]
    assert body["key_alias"] == "by-body"
    assert body["key"] != "sk-key-in-body-0000000001"


async def test_key_with_url_escaped_characters_in_the_path(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    # Each of these characters means something in a URL unless escaped.
    key = "sk-esc/aped+key%41?#&=;[0123]"
    created = await generate(rest, server, key=key)
    path = f"/key/{urllib.parse.quote(key, safe='')}/regenerate"
    # The same key as a query parameter, form-encoded (`+` is %2B).
    described = await rest.get(
        "/key/info", params={"key": key}, headers=bearer(server.master_key)
    )
    assert described.status_code == 200, described.text
    assert described.json()["key"] == created["token_id"]

    response = await rest.post(
        path, json={"key_alias": "escaped"}, headers=bearer(server.master_key)
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]
    old_refused = await rest.get("/key/info", headers=bearer(key))
    assert old_refused.status_code == 401


async def test_key_in_the_path_may_be_a_token_id(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    created = await generate(rest, server, key="sk-by-token-id-0000000001")

    response = await rest.post(
        f"/key/{created['token_id']}/regenerate",
        json={},
        headers=bearer(server.master_key),
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]


async def test_regenerate_without_a_body(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    created = await generate(rest, server, key="sk-no-body-key-0000000001")

    response = await rest.post(
        "/key/sk-no-body-key-0000000001/regenerate", headers=bearer(server.master_key)
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]


async def test_grace_period_keeps_the_old_key_working_until_it_ends(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    old_key = "sk-grace-period-key-00001"
    await generate(rest, server, key=old_key)

    response = await rest.post(
        f"/key/{old_key}/regenerate",
        json={"grace_period": "1h"},
        headers=bearer(server.master_key),
    )

    assert response.status_code == 200, response.text
    during = await rest.post(
        "/key/verify", json={"key": old_key}, headers=bearer(old_key)
    )
    assert during.status_code == 200, during.text
    assert during.json()["valid"] is True
    assert during.json()["in_grace_period"] is True
    server.clock.advance(3601)
    after = await rest.get("/key/info", headers=bearer(old_key))
    assert after.status_code == 401


async def test_a_key_rotates_itself_with_x_litellm_api_key(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    key = "sk-self-rotating-key-0001"
    created = await generate(rest, server, key=key)

    response = await rest.post(
        f"/key/{key}/regenerate",
        json={"key_alias": "rotated-by-itself"},
        headers={"x-litellm-api-key": key},
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]
    assert response.json()["key_alias"] == "rotated-by-itself"


async def test_regenerate_errors(rest: httpx.AsyncClient, server: ServerHandle) -> None:
    await generate(rest, server, key="sk-regen-errors-key-00001")
    await generate(rest, server, key="sk-regen-errors-taken-001")
    admin = bearer(server.master_key)
    cases: list[tuple[str, dict[str, Any], dict[str, str], int, str, str | None]] = [
        ("sk-regen-errors-key-00001", {}, {}, 401, "auth_error", None),
        (
            "sk-regen-errors-key-00001",
            {},
            bearer("sk-not-a-key-000000000000"),
            401,
            "auth_error",
            None,
        ),
        ("sk-unknown-key-0000000001", {}, admin, 404, "not_found_error", "key"),
        ("not-a-key", {}, admin, 400, "invalid_request_error", "key"),
        (
            "sk-regen-errors-key-00001",
            {"duration": "soon"},
            admin,
            400,
            "invalid_request_error",
            "duration",
        ),
        (
            "sk-regen-errors-key-00001",
            {"max_budget": -1},
            admin,
            400,
            "invalid_request_error",
            "max_budget",
        ),
        (
            "sk-regen-errors-key-00001",
            {"new_key": "sk-short"},
            admin,
            400,
            "invalid_request_error",
            "new_key",
        ),
        (
            "sk-regen-errors-key-00001",
            {"new_key": "sk-regen-errors-taken-001"},
            admin,
            409,
            "conflict_error",
            "new_key",
        ),
        (
            "sk-regen-errors-key-00001",
            {"max_budget": 1},
            bearer("sk-regen-errors-taken-001"),
            403,
            "permission_error",
            None,
        ),
    ]

    for key, body, headers, status, error_type, param in cases:
        response = await rest.post(f"/key/{key}/regenerate", json=body, headers=headers)

        assert response.status_code == status, (key, body, response.text)
        error = assert_legacy_error(response)
        assert error["type"] == error_type, (key, body, error)
        if param is not None:
            assert error["param"] == param, (key, body, error)


async def test_nulls_go_to_the_top_level_only(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    # Objects inside the key may hold members named like the key's own
    # fields; only the unset top-level fields become null.
    metadata = {"key_alias": "inner", "expires": {"max_budget": 1}, "user_id": None}
    await generate(rest, server, key="sk-nested-names-key-00001", metadata=metadata)

    response = await rest.post(
        "/key/sk-nested-names-key-00001/regenerate",
        json={"permissions": {"team_id": "inner"}},
        headers=bearer(server.master_key),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metadata"] == metadata
    assert body["permissions"] == {"team_id": "inner"}
    for unset in ("key_alias", "expires", "user_id", "team_id", "max_budget"):
        assert body[unset] is None, unset
    assert response.text.count('"key_alias"') == 2


async def test_concurrent_retries_with_one_idempotency_key_rotate_once(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    created = await generate(rest, server, key="sk-concurrent-retry-00001")
    headers = {**bearer(server.master_key), "Idempotency-Key": "concurrent-0001"}

    answers = await asyncio.gather(
        *(
            rest.post(
                "/key/sk-concurrent-retry-00001/regenerate",
                json={"max_budget": 7},
                headers=headers,
            )
            for _ in range(4)
        )
    )

    assert [answer.status_code for answer in answers] == [200] * 4, [
        answer.text for answer in answers
    ]
    assert len({answer.content for answer in answers}) == 1
    stored = await info(rest, server, answers[0].json()["token_id"])
    assert stored["id"] == created["id"]
    assert stored["rotation_count"] == 1


async def test_times_on_a_whole_second_still_show_milliseconds(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    server.clock.set(dt.datetime(2026, 12, 3, 22, 0, 0))
    admin = bearer(server.master_key)
    # A metadata value shaped like a time is the caller's and stays as sent.
    metadata = {"expires": "2026-01-01T00:00:00Z", "created_at": "soon"}
    created = await generate(
        rest, server, key="sk-whole-second-key-00001", duration="1h", metadata=metadata
    )

    rotated = await rest.post(
        "/key/sk-whole-second-key-00001/regenerate",
        json={"budget_duration": "1d"},
        headers=admin,
    )
    described = await rest.get(
        "/key/info", params={"key": rotated.json()["key"]}, headers=admin
    )
    verified = await rest.post(
        "/key/verify", json={"key": rotated.json()["key"]}, headers=admin
    )
    listed = await rest.get(
        "/key/list", params={"return_full_object": "true"}, headers=admin
    )

    for body in (
        created,
        rotated.json(),
        described.json()["info"],
        verified.json()["info"],
        listed.json()["keys"][0],
    ):
        for name in ("expires", "created_at", "updated_at"):
            assert RFC3339_UTC.match(body[name]), (name, body[name])
        assert body["metadata"] == metadata
    assert created["expires"] == "2026-12-03T23:00:00.000Z"
    assert rotated.json()["budget_reset_at"] == "2026-12-04T22:00:00.000Z"


async def test_the_key_in_the_path_wins_over_the_body_and_the_query(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    admin = bearer(server.master_key)
    named = await generate(rest, server, key="sk-named-in-the-path-0001")
    other = await generate(rest, server, key="sk-named-in-the-body-0001")

    response = await rest.post(
        "/key/sk-named-in-the-path-0001/regenerate",
        params={"key": "sk-named-in-the-body-0001", "max_budget": "1"},
        json={"key": "sk-named-in-the-body-0001", "key_alias": "rotated"},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == named["id"]
    assert response.json()["max_budget"] is None  # query parameters set nothing
    assert (await info(rest, server, "sk-named-in-the-body-0001"))["id"] == other["id"]
    assert (await info(rest, server, response.json()["key"]))["key_alias"] == "rotated"


async def test_a_json_null_body_is_no_body(
    rest: httpx.AsyncClient, server: ServerHandle
) -> None:
    created = await generate(rest, server, key="sk-null-body-key-00000001", tpm_limit=7)

    response = await rest.post(
        "/key/sk-null-body-key-00000001/regenerate",
        content=b"null",
        headers={**bearer(server.master_key), "Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]
    assert response.json()["tpm_limit"] == 7
