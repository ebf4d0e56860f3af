"""Every legacy /key/* endpoint through the real Envoy: its answer and its errors."""

from __future__ import annotations

import pathlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import ServerHandle
from envoy_harness import assert_legacy_error, rest_client, run_envoy

from keyservice.v1 import key_pb2

KEY_FIELDS = {field.name for field in key_pb2.Key.DESCRIPTOR.fields}


@pytest.fixture
async def rest(
    server: ServerHandle, tmp_path: pathlib.Path, issued_secrets: set[str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with rest_client(server.port, tmp_path / "envoy", issued_secrets) as client:
        yield client


@pytest.fixture
def admin(server: ServerHandle) -> dict[str, str]:
    return bearer(server.master_key)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def generate(
    rest: httpx.AsyncClient, admin: dict[str, str], **fields: Any
) -> dict[str, Any]:
    response = await rest.post("/key/generate", json=fields, headers=admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_error(
    response: httpx.Response, status: int, error_type: str, param: str | None = None
) -> None:
    assert response.status_code == status, response.text
    error = assert_legacy_error(response)
    assert error["type"] == error_type, error
    if param is not None:
        assert error["param"] == param, error


# -- POST /key/generate -------------------------------------------------------


async def test_generate_answers_the_key_object_with_its_plaintext(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await rest.post(
        "/key/generate",
        json={
            "key_alias": "gen",
            "models": ["gpt-4"],
            "tpm_limit": 5,
            "duration": "1h",
        },
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == KEY_FIELDS
    assert body["key"].startswith("sk-")
    assert body["key_alias"] == "gen"
    assert body["models"] == ["gpt-4"]
    assert body["tpm_limit"] == 5
    assert body["duration"] == "1h"
    assert body["max_budget"] is None
    assert body["rotation_count"] == 0


async def test_generate_errors(rest: httpx.AsyncClient, admin: dict[str, str]) -> None:
    taken = await generate(rest, admin, key="sk-generate-taken-0000001")
    worker = await generate(rest, admin, key="sk-generate-worker-000001")

    no_credentials = await rest.post("/key/generate", json={})
    bad_credentials = await rest.post(
        "/key/generate", json={}, headers=bearer("sk-unknown-credential-001")
    )
    malformed_credentials = await rest.post(
        "/key/generate", json={}, headers={"Authorization": "Basic abc"}
    )
    bad_duration = await rest.post(
        "/key/generate", json={"duration": "forever"}, headers=admin
    )
    negative = await rest.post("/key/generate", json={"tpm_limit": -1}, headers=admin)
    in_use = await rest.post("/key/generate", json={"key": taken["key"]}, headers=admin)
    not_allowed = await rest.post(
        "/key/generate", json={}, headers=bearer(worker["key"])
    )

    assert_error(no_credentials, 401, "auth_error")
    assert_error(bad_credentials, 401, "auth_error")
    assert_error(malformed_credentials, 401, "auth_error")
    assert_error(bad_duration, 400, "invalid_request_error", "duration")
    assert_error(negative, 400, "invalid_request_error", "tpm_limit")
    assert_error(in_use, 409, "conflict_error", "key")
    assert_error(not_allowed, 403, "permission_error")


# -- POST /key/update ---------------------------------------------------------


async def test_update_changes_only_the_sent_fields(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await generate(rest, admin, key_alias="before", max_budget=10.0)

    response = await rest.post(
        "/key/update",
        json={"key": created["key"], "max_budget": 20.5, "tags": ["t"]},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == KEY_FIELDS
    # Outside Generate and Regenerate, `key` is the token id, never a secret.
    assert body["key"] == created["token_id"]
    assert body["max_budget"] == 20.5
    assert body["tags"] == ["t"]
    assert body["key_alias"] == "before"


async def test_update_errors(rest: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await generate(rest, admin)

    unknown = await rest.post(
        "/key/update", json={"key": "sk-unknown-update-key-001"}, headers=admin
    )
    no_key = await rest.post("/key/update", json={"max_budget": 1}, headers=admin)
    bad_value = await rest.post(
        "/key/update",
        json={"key": created["key"], "budget_duration": "weekly"},
        headers=admin,
    )
    by_itself = await rest.post(
        "/key/update",
        json={"key": created["key"], "max_budget": 1},
        headers=bearer(created["key"]),
    )

    assert_error(unknown, 404, "not_found_error", "key")
    assert_error(no_key, 400, "invalid_request_error", "key")
    assert_error(bad_value, 400, "invalid_request_error", "budget_duration")
    assert_error(by_itself, 403, "permission_error")


# -- POST /key/delete ---------------------------------------------------------


async def test_delete_answers_the_deleted_token_ids(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    by_key = await generate(rest, admin)
    by_alias = await generate(rest, admin, key_alias="doomed")

    first = await rest.post(
        "/key/delete", json={"keys": [by_key["key"]]}, headers=admin
    )
    second = await rest.post(
        "/key/delete", json={"key_aliases": ["doomed"]}, headers=admin
    )

    assert first.status_code == 200, first.text
    assert first.json() == {"deleted_keys": [by_key["token_id"]]}
    assert second.status_code == 200, second.text
    assert second.json() == {"deleted_keys": [by_alias["token_id"]]}
    gone = await rest.get("/key/info", params={"key": by_key["key"]}, headers=admin)
    assert_error(gone, 404, "not_found_error")


async def test_delete_errors(rest: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await generate(rest, admin)

    nothing_named = await rest.post("/key/delete", json={}, headers=admin)
    unknown = await rest.post(
        "/key/delete", json={"keys": ["sk-unknown-delete-key-001"]}, headers=admin
    )
    no_credentials = await rest.post("/key/delete", json={"keys": [created["key"]]})
    by_itself = await rest.post(
        "/key/delete", json={"keys": [created["key"]]}, headers=bearer(created["key"])
    )

    assert_error(nothing_named, 400, "invalid_request_error", "keys")
    assert_error(unknown, 404, "not_found_error")
    assert_error(no_credentials, 401, "auth_error")
    assert_error(by_itself, 403, "permission_error")


# -- GET /key/info ------------------------------------------------------------


async def test_info_answers_key_and_info_without_the_secret(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await generate(rest, admin, key_alias="described", max_budget=3.0)

    by_secret = await rest.get(
        "/key/info", params={"key": created["key"]}, headers=admin
    )
    by_token = await rest.get(
        "/key/info", params={"key": created["token_id"]}, headers=admin
    )
    itself = await rest.get("/key/info", headers=bearer(created["key"]))

    for response in (by_secret, by_token, itself):
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"key", "info"}
        assert body["key"] == created["token_id"]
        assert body["info"]["key"] == created["token_id"]
        assert body["info"]["key_alias"] == "described"
        assert body["info"]["max_budget"] == 3.0
        assert body["info"]["spend"] == 0
        assert body["info"]["blocked"] is False
        assert created["key"] not in response.text


async def test_info_errors(rest: httpx.AsyncClient, admin: dict[str, str]) -> None:
    one = await generate(rest, admin)
    other = await generate(rest, admin)

    unknown = await rest.get(
        "/key/info", params={"key": "sk-unknown-info-key-00001"}, headers=admin
    )
    malformed = await rest.get("/key/info", params={"key": "abc"}, headers=admin)
    no_credentials = await rest.get("/key/info", params={"key": one["key"]})
    someone_else = await rest.get(
        "/key/info", params={"key": other["token_id"]}, headers=bearer(one["key"])
    )

    assert_error(unknown, 404, "not_found_error", "key")
    assert_error(malformed, 400, "invalid_request_error", "key")
    assert_error(no_credentials, 401, "auth_error")
    assert_error(someone_else, 403, "permission_error")


# -- GET /key/list ------------------------------------------------------------


async def test_list_answers_a_legacy_page(
    rest: httpx.AsyncClient, admin: dict[str, str], server: ServerHandle
) -> None:
    created = []
    for _ in range(3):
        # Distinct creation times give the page a defined order.
        server.clock.advance(1)
        created.append(await generate(rest, admin, user_id="lister"))
    await generate(rest, admin, user_id="someone-else")

    first = await rest.get(
        "/key/list",
        params={"user_id": "lister", "size": 2, "sort_order": "asc"},
        headers=admin,
    )
    second = await rest.get(
        "/key/list",
        params={
            "user_id": "lister",
            "size": 2,
            "page": 2,
            "sort_order": "asc",
            "return_full_object": "true",
        },
        headers=admin,
    )

    assert first.status_code == 200, first.text
    assert first.json() == {
        "keys": [created[0]["token_id"], created[1]["token_id"]],
        "total_count": 3,
        "current_page": 1,
        "total_pages": 2,
    }
    assert second.status_code == 200, second.text
    page = second.json()
    assert set(page) == {"keys", "total_count", "current_page", "total_pages"}
    assert page["current_page"] == 2
    (full,) = page["keys"]
    assert full["key"] == full["token_id"] == created[2]["token_id"]
    assert full["user_id"] == "lister"
    for key in created:
        assert key["key"] not in second.text


async def test_a_page_over_1_mib_is_served(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Keys are capped at 64 KiB of lists and objects; twenty near the cap make
    # a page of more than a mebibyte.
    blob = "x" * (60 * 1024)
    for _ in range(20):
        await generate(rest, admin, user_id="large", metadata={"blob": blob})

    response = await rest.get(
        "/key/list",
        params={"user_id": "large", "return_full_object": "true", "size": 20},
        headers=admin,
    )

    assert response.status_code == 200, response.text[:500]
    assert len(response.content) > 1024 * 1024
    assert [key["metadata"] for key in response.json()["keys"]] == [{"blob": blob}] * 20


async def test_list_errors(rest: httpx.AsyncClient, admin: dict[str, str]) -> None:
    worker = await generate(rest, admin)

    too_big = await rest.get("/key/list", params={"size": 101}, headers=admin)
    bad_sort = await rest.get("/key/list", params={"sort_by": "secret"}, headers=admin)
    not_a_number = await rest.get("/key/list", params={"page": "two"}, headers=admin)
    no_credentials = await rest.get("/key/list")
    not_allowed = await rest.get("/key/list", headers=bearer(worker["key"]))

    assert_error(too_big, 400, "invalid_request_error", "size")
    assert_error(bad_sort, 400, "invalid_request_error", "sort_by")
    # Envoy itself refuses a query value of the wrong type.
    assert_error(not_a_number, 400, "invalid_request_error")
    assert_error(no_credentials, 401, "auth_error")
    assert_error(not_allowed, 403, "permission_error")


# -- POST /key/block, POST /key/unblock ---------------------------------------


async def test_block_and_unblock_answer_the_key_object(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await generate(rest, admin)

    blocked = await rest.post("/key/block", json={"key": created["key"]}, headers=admin)
    refused = await rest.get("/key/info", headers=bearer(created["key"]))
    unblocked = await rest.post(
        "/key/unblock", json={"key": created["token_id"]}, headers=admin
    )
    allowed = await rest.get("/key/info", headers=bearer(created["key"]))

    assert blocked.status_code == 200, blocked.text
    assert set(blocked.json()) == KEY_FIELDS
    assert blocked.json()["blocked"] is True
    assert blocked.json()["key"] == created["token_id"]
    assert refused.status_code in (401, 403), refused.text
    assert unblocked.status_code == 200, unblocked.text
    assert unblocked.json()["blocked"] is False
    assert allowed.status_code == 200, allowed.text


async def test_block_and_unblock_errors(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await generate(rest, admin)

    for path in ("/key/block", "/key/unblock"):
        unknown = await rest.post(
            path, json={"key": "sk-unknown-block-key-0001"}, headers=admin
        )
        no_key = await rest.post(path, json={}, headers=admin)
        no_credentials = await rest.post(path, json={"key": created["key"]})
        by_itself = await rest.post(
            path, json={"key": created["key"]}, headers=bearer(created["key"])
        )

        assert_error(unknown, 404, "not_found_error", "key")
        assert_error(no_key, 400, "invalid_request_error", "key")
        assert_error(no_credentials, 401, "auth_error")
        assert_error(by_itself, 403, "permission_error")


# -- POST /key/verify ---------------------------------------------------------


async def test_verify_tells_whether_a_key_may_be_used(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    good = await generate(rest, admin)
    blocked = await generate(rest, admin, blocked=True)

    valid = await rest.post("/key/verify", json={"key": good["key"]}, headers=admin)
    refused = await rest.post(
        "/key/verify", json={"key": blocked["key"]}, headers=admin
    )
    unknown = await rest.post(
        "/key/verify", json={"key": "sk-unknown-verify-key-001"}, headers=admin
    )

    assert valid.status_code == 200, valid.text
    assert valid.json()["valid"] is True
    assert valid.json()["reason"] == "VERIFY_REASON_OK"
    assert valid.json()["in_grace_period"] is False
    assert valid.json()["info"]["key"] == good["token_id"]
    assert refused.json()["valid"] is False
    assert refused.json()["reason"] == "VERIFY_REASON_BLOCKED"
    assert unknown.status_code == 200, unknown.text
    assert unknown.json()["valid"] is False
    assert unknown.json()["reason"] == "VERIFY_REASON_NOT_FOUND"


async def test_verify_errors(rest: httpx.AsyncClient, admin: dict[str, str]) -> None:
    no_key = await rest.post("/key/verify", json={}, headers=admin)
    no_credentials = await rest.post(
        "/key/verify", json={"key": "sk-unknown-verify-key-002"}
    )

    assert_error(no_key, 400, "invalid_request_error", "key")
    assert_error(no_credentials, 401, "auth_error")


# -- Envoy's own answers ------------------------------------------------------


async def test_malformed_json_is_a_400_that_does_not_quote_the_body(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    secret = "sk-quoted-by-a-parser-00001"

    broken = await rest.post(
        "/key/generate",
        content=b'{"key": "' + secret.encode() + b'", "models": [',
        headers={**admin, "Content-Type": "application/json"},
    )
    wrong_type = await rest.post(
        "/key/generate", json={"key": secret, "max_budget": "lots"}, headers=admin
    )
    not_an_object = await rest.post("/key/generate", json=[secret], headers=admin)
    fraction_for_integer = await rest.post(
        "/key/generate", json={"key": secret, "tpm_limit": 1.5}, headers=admin
    )

    for response in (broken, wrong_type, not_an_object, fraction_for_integer):
        assert_error(response, 400, "invalid_request_error")
        assert secret not in response.text


async def test_unknown_paths_are_json_404s(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    responses = [
        await rest.get("/", headers=admin),
        await rest.post("/key/nothing", json={}, headers=admin),
        await rest.post("/key/a/b/regenerate", json={}, headers=admin),
        await rest.post("/keyservice.v1.KeyService/Generate", json={}, headers=admin),
    ]

    for response in responses:
        assert_error(response, 404, "not_found_error")


async def test_a_wrong_method_is_a_405_naming_the_right_one(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    cases = [
        ("GET", "/key/generate", "POST"),
        ("PUT", "/key/update", "POST"),
        ("DELETE", "/key/info", "GET"),
        ("POST", "/key/list", "GET"),
        ("GET", "/key/sk-some-key-in-a-path-001/regenerate", "POST"),
    ]

    for method, path, allowed in cases:
        response = await rest.request(method, path, headers=admin)

        assert_error(response, 405, "invalid_request_error")
        assert response.headers["allow"] == allowed


async def test_a_body_over_1_mib_is_a_413(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await rest.post(
        "/key/generate", json={"key_alias": "a" * (1024 * 1024)}, headers=admin
    )

    assert_error(response, 413, "invalid_request_error")


async def test_unknown_json_fields_and_query_parameters_are_ignored(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await rest.post(
        "/key/generate", json={"key_alias": "lenient", "team": "x"}, headers=admin
    )
    listed = await rest.get("/key/list", params={"nonsense": "1"}, headers=admin)

    assert created.status_code == 200, created.text
    assert created.json()["key_alias"] == "lenient"
    assert listed.status_code == 200, listed.text


async def test_an_unreachable_server_is_a_503_in_the_legacy_shape(
    tmp_path: pathlib.Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    # Nothing listens on closed_port once the probe socket is closed.
    async with rest_client(closed_port, tmp_path / "envoy", set()) as rest:
        response = await rest.post(
            "/key/generate", json={}, headers=bearer("sk-any-credential-000001")
        )

    assert_error(response, 503, "unavailable_error")


async def test_envoy_config_loads_without_deprecated_fields(
    tmp_path: pathlib.Path,
) -> None:
    # A deprecated field is a warning today and a start-up failure after an
    # Envoy upgrade.
    async with run_envoy(1, tmp_path / "envoy") as envoy:
        log = envoy.log()

    assert "Deprecated field" not in log, log
    assert "deprecated option" not in log, log


async def test_info_and_verify_show_unset_fields_as_null(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await generate(rest, admin, key="sk-nulls-in-info-0000001")

    described = await rest.get(
        "/key/info", params={"key": created["key"]}, headers=admin
    )
    verified = await rest.post(
        "/key/verify", json={"key": created["key"]}, headers=admin
    )

    for body in (described.json()["info"], verified.json()["info"]):
        assert set(body) == KEY_FIELDS, set(body) ^ KEY_FIELDS
        for name in ("key_alias", "expires", "max_budget", "user_id", "tpm_limit"):
            assert body[name] is None, name
        assert body["key"] == created["token_id"]


async def test_a_grpc_call_on_a_rest_path_is_refused_not_a_silent_success(
    server: ServerHandle, tmp_path: pathlib.Path
) -> None:
    # Envoy answers a gRPC request (by its content type) in gRPC, so the
    # refusal is a grpc-status for this caller, and not a bare 200.
    async with run_envoy(server.port, tmp_path / "envoy") as envoy:
        async with httpx.AsyncClient(base_url=envoy.base_url) as client:
            response = await client.post(
                "/key/update",
                content=b"\x00\x00\x00\x00\x00",
                headers={
                    **bearer(server.master_key),
                    "Content-Type": "application/grpc",
                },
            )

    assert response.headers.get("grpc-status") not in (None, "0"), response.headers
    assert "application/json" in response.headers.get("grpc-message", "")


async def test_request_headers_get_a_legacy_answer_whatever_their_size(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # 20 KiB is past gRPC's default metadata limit but within Envoy's: the
    # server must see it (here: an unknown key) rather than gRPC refusing it.
    long_key = "sk-" + "x" * 20_000
    response = await rest.get("/key/list", headers=bearer(long_key))
    assert_error(response, 401, "auth_error")

    response = await rest.get("/key/list", headers={**admin, "X-Padding": "p" * 70_000})
    assert_error(response, 431, "invalid_request_error")


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/key/list", {"key_alias": "%FF"}),
        ("GET", "/key/info", {"key": "sk-%FF%FE-not-utf8-0000000"}),
        ("POST", "/key/sk-%C0%AF-not-utf8-000000000/regenerate", {}),
    ],
)
async def test_percent_escapes_that_are_not_utf8_are_a_400(
    rest: httpx.AsyncClient,
    admin: dict[str, str],
    method: str,
    path: str,
    params: dict[str, str],
) -> None:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    url = httpx.URL(f"{rest.base_url}{path}{'?' + query if query else ''}")

    response = await rest.request(
        method, url, headers=admin, json={} if method == "POST" else None
    )

    assert_error(response, 400, "invalid_request_error")


async def test_an_empty_list_has_no_pages(
    rest: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await rest.get("/key/list", params={"user_id": "nobody"}, headers=admin)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "keys": [],
        "total_count": 0,
        "current_page": 1,
        "total_pages": 0,
    }
