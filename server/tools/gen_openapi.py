"""Write the OpenAPI 3 document of the REST surface from the descriptor set.

The document describes what a client of Envoy's gRPC-JSON transcoder (as
configured in envoy.yaml) sends and receives: the `google.api.http` bindings of
the proto, proto field names, unset optional fields as null, and the legacy
error body. Descriptions are the proto comments, which the descriptor set
carries as source info. The output depends only on the descriptor set, so
`make check-gen` can compare it byte for byte.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "gen" / "descriptor" / "keyservice.binpb"
TARGET = ROOT / "gen" / "openapi" / "keyservice.openapi.json"

OPENAPI_VERSION = "3.0.3"
SERVER_URL = "http://localhost:4000"

Schema = dict[str, Any]
Field = descriptor_pb2.FieldDescriptorProto

# Source-info path numbers of descriptor.proto.
_FILE_MESSAGE = 4
_FILE_ENUM = 5
_FILE_SERVICE = 6
_MESSAGE_FIELD = 2
_MESSAGE_NESTED = 3
_MESSAGE_ENUM = 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

_SCALARS: dict[int, Schema] = {
    Field.TYPE_DOUBLE: {"type": "number", "format": "double"},
    Field.TYPE_FLOAT: {"type": "number", "format": "float"},
    Field.TYPE_INT32: {"type": "integer", "format": "int32"},
    Field.TYPE_SINT32: {"type": "integer", "format": "int32"},
    Field.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    Field.TYPE_UINT32: {"type": "integer", "minimum": 0, "maximum": 4294967295},
    Field.TYPE_FIXED32: {"type": "integer", "minimum": 0, "maximum": 4294967295},
    # The transcoder prints 64-bit integers as strings, as proto3 JSON does.
    Field.TYPE_INT64: {"type": "string", "format": "int64"},
    Field.TYPE_SINT64: {"type": "string", "format": "int64"},
    Field.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    Field.TYPE_UINT64: {"type": "string", "format": "uint64"},
    Field.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    Field.TYPE_BOOL: {"type": "boolean"},
    Field.TYPE_STRING: {"type": "string"},
    Field.TYPE_BYTES: {"type": "string", "format": "byte"},
}

# The proto3 JSON forms of the well-known types.
_WELL_KNOWN: dict[str, Schema] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    ".google.protobuf.FieldMask": {"type": "string"},
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Value": {},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
    ".google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    ".google.protobuf.FloatValue": {"type": "number", "format": "float"},
    ".google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    ".google.protobuf.UInt32Value": {"type": "integer", "minimum": 0},
    ".google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    ".google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
    ".google.protobuf.BoolValue": {"type": "boolean"},
    ".google.protobuf.StringValue": {"type": "string"},
    ".google.protobuf.BytesValue": {"type": "string", "format": "byte"},
}

# The error body of the legacy API, which envoy.yaml produces for every error.
_ERROR_SCHEMA: Schema = {
    "type": "object",
    "description": "The error body of the legacy API.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {
                    "type": "string",
                    "description": "What went wrong; it never holds a secret.",
                },
                "type": {
                    "type": "string",
                    "description": "The kind of error: invalid_request_error, "
                    "auth_error, permission_error, not_found_error, "
                    "conflict_error, internal_error or unavailable_error.",
                },
                "param": {
                    "type": "string",
                    "nullable": True,
                    "description": "The request field at fault, if one is.",
                },
                "code": {
                    "type": "string",
                    "pattern": "^[1-5][0-9][0-9]$",
                    "description": "The HTTP status, as a string.",
                },
            },
        }
    },
}

_ERROR_RESPONSES: dict[str, str] = {
    "400": "The request is malformed or a value is not allowed.",
    "401": "No key was presented, or it is not valid.",
    "403": "The key presented may not do this.",
    "404": "No such key, or no such endpoint.",
    "409": "A conflict: the new secret is in use, the key changed meanwhile, "
    "or the idempotency key was used for another request.",
}


@dataclass(frozen=True)
class _Message:
    proto: descriptor_pb2.DescriptorProto
    file: str
    path: tuple[int, ...]


@dataclass(frozen=True)
class _Enum:
    proto: descriptor_pb2.EnumDescriptorProto
    file: str
    path: tuple[int, ...]


class _Registry:
    """The messages, enums and comments of a descriptor set, by full name."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, _Message] = {}
        self.enums: dict[str, _Enum] = {}
        self.comments: dict[tuple[str, tuple[int, ...]], str] = {}
        for file in fds.file:
            for location in file.source_code_info.location:
                if location.leading_comments:
                    key = (file.name, tuple(location.path))
                    self.comments[key] = location.leading_comments
            prefix = f".{file.package}" if file.package else ""
            for index, message in enumerate(file.message_type):
                self._add_message(file.name, prefix, message, (_FILE_MESSAGE, index))
            for index, enum in enumerate(file.enum_type):
                name = f"{prefix}.{enum.name}"
                self.enums[name] = _Enum(enum, file.name, (_FILE_ENUM, index))

    def _add_message(
        self,
        file: str,
        prefix: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
    ) -> None:
        name = f"{prefix}.{message.name}"
        self.messages[name] = _Message(message, file, path)
        for index, nested in enumerate(message.nested_type):
            self._add_message(file, name, nested, (*path, _MESSAGE_NESTED, index))
        for index, enum in enumerate(message.enum_type):
            self.enums[f"{name}.{enum.name}"] = _Enum(
                enum, file, (*path, _MESSAGE_ENUM, index)
            )

    def comment(self, file: str, path: tuple[int, ...]) -> str:
        return _clean(self.comments.get((file, path), ""))


def _clean(comment: str) -> str:
    """A proto comment as text: paragraphs kept, lines within them joined."""
    paragraphs: list[list[str]] = [[]]
    for line in comment.splitlines():
        line = line.strip()
        if line:
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return "\n\n".join(" ".join(lines) for lines in paragraphs if lines)


def _summary(description: str) -> str:
    first = description.split("\n\n", 1)[0]
    match = re.match(r"(.+?\.)(\s|$)", first)
    return match.group(1) if match else first


def _component(full_name: str) -> str:
    return full_name.lstrip(".")


def _ref(full_name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{_component(full_name)}"}


class _Builder:
    def __init__(self, registry: _Registry) -> None:
        self.registry = registry
        self.components: dict[str, Schema] = {}

    # -- schemas -----------------------------------------------------------

    def _map_entry(self, field: Field) -> _Message | None:
        if field.type != Field.TYPE_MESSAGE:
            return None
        message = self.registry.messages[field.type_name]
        return message if message.proto.options.map_entry else None

    def _value_schema(self, field: Field) -> Schema:
        """The schema of one value of `field`, ignoring repetition."""
        if field.type == Field.TYPE_MESSAGE:
            if field.type_name in _WELL_KNOWN:
                return dict(_WELL_KNOWN[field.type_name])
            self.message_component(field.type_name)
            return _ref(field.type_name)
        if field.type == Field.TYPE_ENUM:
            enum = self.registry.enums[field.type_name]
            return {
                "type": "string",
                "enum": [value.name for value in enum.proto.value],
            }
        return dict(_SCALARS[field.type])

    def field_schema(self, field: Field, description: str) -> Schema:
        entry = self._map_entry(field)
        if entry is not None:
            value_field = entry.proto.field[1]
            schema: Schema = {
                "type": "object",
                "additionalProperties": self._value_schema(value_field),
            }
        elif field.label == Field.LABEL_REPEATED:
            schema = {"type": "array", "items": self._value_schema(field)}
        else:
            schema = self._value_schema(field)
            # Unset optional fields and messages print as null in the Key
            # bodies, and null in a request means "not sent".
            if field.proto3_optional or field.type == Field.TYPE_MESSAGE:
                if "$ref" in schema:
                    schema = {"allOf": [schema]}
                schema["nullable"] = True
        if description:
            schema["description"] = description
            if description.startswith("Output only."):
                schema["readOnly"] = True
        return schema

    def message_component(self, full_name: str) -> None:
        """Add a response message (and the messages it uses) to components."""
        name = _component(full_name)
        if name in self.components:
            return
        self.components[name] = {}  # Guards against recursion.
        message = self.registry.messages[full_name]
        properties: dict[str, Schema] = {}
        # always_print_primitive_fields: every field without presence is
        # printed, zero or not.
        required: list[str] = []
        for index, field in enumerate(message.proto.field):
            path = (*message.path, _MESSAGE_FIELD, index)
            properties[field.name] = self.field_schema(
                field, self.registry.comment(message.file, path)
            )
            has_presence = field.proto3_optional or (
                field.type == Field.TYPE_MESSAGE and field.label != Field.LABEL_REPEATED
            )
            if not has_presence:
                required.append(field.name)
        schema: Schema = {"type": "object"}
        description = self.registry.comment(message.file, message.path)
        if description:
            schema["description"] = description
        if required:
            schema["required"] = required
        schema["properties"] = properties
        self.components[name] = schema

    # -- operations --------------------------------------------------------

    def request_fields(self, full_name: str) -> list[tuple[Field, str]]:
        message = self.registry.messages[full_name]
        return [
            (
                field,
                self.registry.comment(message.file, (*message.path, _MESSAGE_FIELD, i)),
            )
            for i, field in enumerate(message.proto.field)
        ]

    def operation(
        self,
        method: descriptor_pb2.MethodDescriptorProto,
        description: str,
        rule: http_pb2.HttpRule,
        verb: str,
        template: str,
        operation_id: str,
    ) -> tuple[str, Schema]:
        path_params = re.findall(r"\{([^}=]+)(?:=[^}]*)?\}", template)
        openapi_path = re.sub(r"\{([^}=]+)(?:=[^}]*)?\}", r"{\1}", template)
        fields = self.request_fields(method.input_type)
        parameters: list[Schema] = []
        body_properties: dict[str, Schema] = {}
        body_required: list[str] = []

        for field, field_description in fields:
            schema = self.field_schema(field, "")
            required = field_description.startswith("Required.")
            if field.name in path_params:
                schema.pop("nullable", None)
                parameters.append(
                    {
                        "name": field.name,
                        "in": "path",
                        "required": True,
                        "description": field_description,
                        "schema": schema,
                    }
                )
            elif rule.body == "*" or rule.body == field.name:
                body_properties[field.name] = self.field_schema(
                    field, field_description
                )
                if required:
                    body_required.append(field.name)
            elif _query_capable(field):
                schema.pop("nullable", None)
                parameter: Schema = {"name": field.name, "in": "query"}
                if required:
                    parameter["required"] = True
                parameter["description"] = field_description
                parameter["schema"] = schema
                parameters.append(parameter)

        if "idempotency-key" in description:
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Optional. A retry with the same value "
                    "within 24 hours returns the first response.",
                    "schema": {"type": "string"},
                }
            )

        operation: Schema = {
            "operationId": operation_id,
            "tags": [],
            "summary": _summary(description),
            "description": description,
        }
        if parameters:
            operation["parameters"] = parameters
        if rule.body:
            body_schema: Schema = {"type": "object"}
            if body_required:
                body_schema["required"] = body_required
            body_schema["properties"] = body_properties
            operation["requestBody"] = {
                "required": bool(body_required),
                "content": {"application/json": {"schema": body_schema}},
            }
        operation["responses"] = self.responses(method, rule.response_body)
        return openapi_path, operation

    def responses(
        self, method: descriptor_pb2.MethodDescriptorProto, response_body: str
    ) -> Schema:
        schema = _ref(method.output_type)
        description = "OK."
        if not response_body:
            self.message_component(method.output_type)
        else:
            output = self.registry.messages[method.output_type]
            (field,) = [f for f in output.proto.field if f.name == response_body]
            if field.type == Field.TYPE_MESSAGE and field.type_name not in _WELL_KNOWN:
                self.message_component(field.type_name)
                schema = _ref(field.type_name)
                description = (
                    f"OK: the `{response_body}` of the response. Every field of "
                    "it is present; an unset one is null."
                )
            else:
                schema = self.field_schema(field, "")
        responses: Schema = {
            "200": {
                "description": description,
                "content": {"application/json": {"schema": schema}},
            }
        }
        for status in _ERROR_RESPONSES:
            responses[status] = {"$ref": f"#/components/responses/Error{status}"}
        responses["default"] = {"$ref": "#/components/responses/Error"}
        return responses


def _query_capable(field: Field) -> bool:
    """Whether the transcoder can fill `field` from a query parameter."""
    return field.type != Field.TYPE_MESSAGE or field.type_name in (
        ".google.protobuf.Timestamp",
        ".google.protobuf.Duration",
        ".google.protobuf.FieldMask",
    )


def _bindings(rule: http_pb2.HttpRule) -> list[http_pb2.HttpRule]:
    return [rule, *rule.additional_bindings]


def _verb_and_template(rule: http_pb2.HttpRule) -> tuple[str, str]:
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        return rule.custom.kind.lower(), rule.custom.path
    if pattern is None:
        raise ValueError("an HTTP rule without a method")
    return pattern, getattr(rule, pattern)


def _key_link(operation: Schema) -> Schema | None:
    """How `operation` takes the key it acts on, as the `key` parameter or the
    `key` body field; None if it takes none."""
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "key" and parameter["in"] in ("path", "query"):
            return {"parameters": {"key": "$response.body#/key"}}
    content = operation.get("requestBody", {}).get("content", {})
    body = content.get("application/json", {}).get("schema", {})
    if "key" in body.get("properties", {}) and "key" in body.get("required", []):
        return {"requestBody": {"key": "$response.body#/key"}}
    return None


def _add_key_links(paths: dict[str, Schema]) -> None:
    """Link every answer that is a Key to the operations that take a key.

    A Key's `key` is the new plaintext after Generate and Regenerate and the
    token id otherwise, and either is accepted wherever a key is expected, so
    a client (or a fuzzer following links) can chain the calls.
    """
    key_ref = _ref(".keyservice.v1.Key")
    targets = [
        (operation["operationId"], link)
        for item in paths.values()
        for operation in item.values()
        if (link := _key_link(operation)) is not None
    ]
    for item in paths.values():
        for operation in item.values():
            ok = operation["responses"]["200"]
            if ok["content"]["application/json"]["schema"] != key_ref:
                continue
            ok["links"] = {
                target: {"operationId": target, **link} for target, link in targets
            }


def build(fds: descriptor_pb2.FileDescriptorSet) -> Schema:
    registry = _Registry(fds)
    builder = _Builder(registry)
    paths: dict[str, Schema] = {}
    tags: list[Schema] = []

    for file in fds.file:
        for service_index, service in enumerate(file.service):
            service_path = (_FILE_SERVICE, service_index)
            tag = service.name
            service_description = registry.comment(file.name, service_path)
            tags.append({"name": tag, "description": service_description})
            for method_index, method in enumerate(service.method):
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                method_path = (*service_path, _SERVICE_METHOD, method_index)
                description = registry.comment(file.name, method_path)
                for index, binding in enumerate(_bindings(rule)):
                    verb, template = _verb_and_template(binding)
                    operation_id = (
                        method.name if index == 0 else f"{method.name}{index}"
                    )
                    path, operation = builder.operation(
                        method, description, binding, verb, template, operation_id
                    )
                    operation["tags"] = [tag]
                    paths.setdefault(path, {})[verb] = operation

    _add_key_links(paths)
    error_responses: dict[str, Schema] = {
        f"Error{status}": {
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
            },
        }
        for status, description in _ERROR_RESPONSES.items()
    }
    error_responses["Error"] = {
        "description": "Any other error, such as 405 for a method the path "
        "does not take (`Allow` names the right one), 413 for a body over "
        "1 MiB, or 500 for a fault of the server.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
        },
    }
    schemas = dict(sorted(builder.components.items()))
    schemas["Error"] = _ERROR_SCHEMA

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "keyservice legacy REST API",
            "version": "v1",
            "description": "The legacy JSON API of the LLM gateway's key "
            "management, served by Envoy's gRPC-JSON transcoder in front of "
            "keyservice.v1.KeyService. Generated from the proto by "
            "server/tools/gen_openapi.py; do not edit.",
        },
        "servers": [{"url": SERVER_URL}],
        "security": [{"bearerAuth": []}, {"litellmApiKey": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer sk-...`.",
                },
                "litellmApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-litellm-api-key",
                },
            },
        },
    }


def render(document: Schema) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def main() -> int:
    fds = descriptor_pb2.FileDescriptorSet.FromString(SOURCE.read_bytes())
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(render(build(fds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
