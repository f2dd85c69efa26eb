"""Structured logs (operator issue, item 4): `--log-format json` writes one JSON object per
line that log shippers can parse; `--log-level` filters."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster import Cluster, wait_for


def _json_lines(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))  # every such line must parse
    return out


def test_json_logs(tmp_path: Path) -> None:
    c = Cluster(tmp_path, n=3, extra_args=("--log-format", "json"))
    c.start_all()
    try:
        c.init()
        entries = wait_for(
            "a replica-opened log entry",
            lambda: [e for e in _json_lines(tmp_path / "n1.log") if "opened replica" in str(e)],
            timeout=20,
        )
        entry = entries[0]
        assert set(entry) >= {"ts", "level", "logger", "msg", "node"}
        assert entry["level"] == "info" and entry["node"] == 1
        assert str(entry["ts"]).endswith("+00:00")
        assert str(entry["logger"]).startswith("raftgroups")
        assert all(e["level"] != "debug" for e in _json_lines(tmp_path / "n1.log"))
    finally:
        c.stop_all()
