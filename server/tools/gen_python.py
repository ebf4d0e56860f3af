"""Generate the Python stubs and the descriptor set from proto/ into gen/."""

from __future__ import annotations

import pathlib
import sys

import grpc_tools
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"


def _include_dirs() -> list[str]:
    # grpcio-tools ships google/protobuf/*.proto; googleapis-common-protos ships
    # google/api/*.proto next to its Python modules.
    import google.api

    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    googleapis = pathlib.Path(google.api.__path__[0]).parent.parent
    return [str(PROTO_ROOT), str(well_known), str(googleapis)]


def main() -> int:
    protos = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto")
    )
    out = ROOT / "gen" / "python"
    descriptor = ROOT / "gen" / "descriptor" / "keyservice.binpb"
    args = ["grpc_tools.protoc", *(f"-I{d}" for d in _include_dirs())]
    args += [
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        # Envoy's transcoder needs every import in the set; the OpenAPI
        # generator reads the comments from the source info.
        f"--descriptor_set_out={descriptor}",
        "--include_imports",
        "--include_source_info",
        *protos,
    ]
    if protoc.main(args) != 0:
        return 1
    for package in {pathlib.Path(p).parent for p in protos}:
        for part in (package, *package.parents):
            if str(part) != ".":
                (out / part / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
