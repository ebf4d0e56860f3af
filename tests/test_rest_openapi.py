"""The generated OpenAPI document: fresh, complete, and true to the real surface."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import pathlib
import re
import sys
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import httpx
import pytest
from conftest import ServerHandle
from envoy_harness import rest_client
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "gen" / "openapi" / "keyservice.openapi.json"
DESCRIPTOR = ROOT / "gen" / "descriptor" / "keyservice.binpb"
# Enough cases to reach every operation with valid and invalid input, and (by
# the document's links) to chain Generate into the calls that take a key; the
# run takes well under a minute.
FUZZ_EXAMPLES_PER_OPERATION = 15
FUZZ_SEED = 20251203


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_openapi", ROOT / "server" / "tools" / "gen_openapi.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return document


def test_document_is_what_the_generator_writes_now() -> None:
    generator = _generator()

    rendered = generator.render(generator.build(_descriptor_set()))

    assert rendered == DOCUMENT.read_bytes(), "run `make gen`"
    assert rendered == generator.render(generator.build(_descriptor_set()))


def test_document_has_one_operation_per_http_binding() -> None:
    bindings = set()
    for file in _descriptor_set().file:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    bindings.add((verb, getattr(binding, verb)))

    operations = {
        (verb, path) for path, item in _document()["paths"].items() for verb in item
    }

    assert operations == bindings
    assert len(bindings) == 10


def test_types_are_modelled_as_the_transcoder_prints_them() -> None:
    document = _document()
    key = document["components"]["schemas"]["keyservice.v1.Key"]["properties"]
    regenerate = document["paths"]["/key/{key}/regenerate"]["post"]
    body = regenerate["requestBody"]["content"]["application/json"]["schema"]
    listing = document["paths"]["/key/list"]["get"]

    assert key["expires"]["type"] == "string"
    assert key["expires"]["format"] == "date-time"
    assert key["expires"]["nullable"] is True
    assert key["max_budget"] == {**key["max_budget"], "type": "number"}
    assert key["max_budget"]["nullable"] is True
    assert key["rotation_count"]["type"] == "integer"
    assert key["metadata"]["type"] == "object"
    assert key["model_rpm_limit"]["additionalProperties"]["type"] == "integer"
    assert key["key"]["readOnly"] is True
    assert "key" not in body["properties"], "a path parameter is not in the body"
    assert body["properties"]["models"]["type"] == "array"
    assert body["properties"]["model_max_budget"]["type"] == "object"
    assert {p["name"] for p in regenerate["parameters"]} == {"key", "Idempotency-Key"}
    assert "requestBody" not in listing
    assert {p["in"] for p in listing["parameters"]} == {"query"}
    page = next(p for p in listing["parameters"] if p["name"] == "size")
    assert page["schema"]["type"] == "integer"
    ok = regenerate["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/keyservice.v1.Key"}
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == [
        "message",
        "type",
        "param",
        "code",
    ]


@pytest.fixture
async def rest(
    server: ServerHandle, tmp_path: pathlib.Path, issued_secrets: set[str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with rest_client(server.port, tmp_path / "envoy", issued_secrets) as client:
        yield client


async def test_fuzzing_from_the_document_finds_no_server_error(
    rest: httpx.AsyncClient, server: ServerHandle, tmp_path: pathlib.Path
) -> None:
    # The schemathesis CLI runs in a process of its own: the server under test
    # serves from this test's event loop, which must stay free.
    process = await asyncio.create_subprocess_exec(
        str(pathlib.Path(sys.executable).parent / "st"),
        "run",
        str(DOCUMENT),
        "--url",
        str(rest.base_url).rstrip("/"),
        "--header",
        f"Authorization: Bearer {server.master_key}",
        # No 5xx, every answer as the document describes it, and an Allow
        # header on every 405. Not checked: unsupported_method (Envoy's HTTP/1
        # parser answers a method it does not know, such as QUERY, with 400),
        # and whether the server accepts all the data the schema allows (the
        # document cannot state every rule, e.g. a key's length).
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance,response_headers_conformance,"
        "allow_header_conformance",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(FUZZ_EXAMPLES_PER_OPERATION),
        "--seed",
        str(FUZZ_SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--continue-on-failure",
        "--output-sanitize",
        "false",
        "--no-color",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    report = output.decode(errors="replace")

    assert process.returncode == 0, report
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated is not None, report
    assert int(generated.group(1)) >= 200, report
    assert generated.group(1) == generated.group(2), report
