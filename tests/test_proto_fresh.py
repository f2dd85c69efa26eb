"""The committed generated code matches proto/atlasql/v1/*.proto (like etcd's verify_genproto)."""

from __future__ import annotations

import pathlib

from scripts.genproto import GENERATED, ROOT, generate


def test_generated_code_is_fresh(tmp_path: pathlib.Path) -> None:
    generate(tmp_path)
    stale = [
        name
        for name in GENERATED
        if (tmp_path / name).read_bytes() != (ROOT / "proto" / name).read_bytes()
    ]
    assert not stale, f"run `python scripts/genproto.py`: stale {stale}"
