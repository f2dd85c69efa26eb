"""Package boundaries: imports flow proto <- storage <- raftgroups <- router <- sqlfront, only
raftgroups imports pysyncobj, and every package declares its public surface in __all__."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
ORDER = ["proto", "storage", "raftgroups", "router", "sqlfront"]


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", ORDER)
def test_imports_follow_the_layer_order(package: str) -> None:
    allowed = set(ORDER[: ORDER.index(package) + 1])
    for path in (ROOT / package).glob("*.py"):
        bad = (_imports(path) & set(ORDER)) - allowed
        assert not bad, f"{path.relative_to(ROOT)} imports {bad} (layer order)"


def test_only_raftgroups_imports_pysyncobj() -> None:
    for package in ORDER:
        if package == "raftgroups":
            continue
        for path in (ROOT / package).glob("*.py"):
            assert "pysyncobj" not in _imports(path), path


@pytest.mark.parametrize("package", ORDER)
def test_public_surface_is_declared(package: str) -> None:
    mod = importlib.import_module(package)
    exported = getattr(mod, "__all__", None)
    assert exported, f"{package} has no __all__"
    for name in exported:
        assert hasattr(mod, name), f"{package}.__all__ lists missing {name}"
