"""Write the descriptor set that Envoy's gRPC-JSON transcoder loads.

It is gen/descriptor/keyservice.binpb without the `response_body` of the HTTP
bindings: Envoy 1.40 refuses to start on `response_body` naming a field that is
not a google.api.HttpBody. The Lua filter in envoy.yaml does that unwrapping
instead, on the routes marked `response_body: key`.
"""

from __future__ import annotations

import pathlib
import sys

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "gen" / "descriptor" / "keyservice.binpb"
TARGET = ROOT / "gen" / "envoy" / "keyservice.binpb"


def strip_response_body(fds: descriptor_pb2.FileDescriptorSet) -> None:
    for file in fds.file:
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                rule.ClearField("response_body")
                for binding in rule.additional_bindings:
                    binding.ClearField("response_body")


def main() -> int:
    fds = descriptor_pb2.FileDescriptorSet.FromString(SOURCE.read_bytes())
    # Envoy needs no comments, and without them the file changes only when
    # the contract does.
    for file in fds.file:
        file.ClearField("source_code_info")
    strip_response_body(fds)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(fds.SerializeToString(deterministic=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
