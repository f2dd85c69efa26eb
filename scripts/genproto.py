"""Regenerate the Python code for proto/atlasql/v1/*.proto into proto/.

Usage: python scripts/genproto.py [--out DIR]

The generated modules are committed; tests/test_proto_fresh.py regenerates into a temporary
directory and fails when the committed files differ. grpcio-tools is pinned in pyproject.toml
so the output is stable.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto" / "atlasql" / "v1"
GENERATED = ("atlasql_pb2.py", "atlasql_pb2.pyi", "atlasql_pb2_grpc.py")


def generate(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Run protoc (from grpcio-tools) and return the files written."""
    from grpc_tools import protoc  # test/dev dependency only

    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.name) for p in PROTO_DIR.glob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    grpc_file = out_dir / "atlasql_pb2_grpc.py"
    text = grpc_file.read_text()
    # protoc emits an absolute import; the generated modules live inside the `proto` package.
    text = re.sub(r"^import atlasql_pb2 as", "from . import atlasql_pb2 as", text, flags=re.M)
    grpc_file.write_text(text)
    return [out_dir / name for name in GENERATED]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "proto")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
