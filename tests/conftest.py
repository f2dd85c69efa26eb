"""Puts the repository root on sys.path so tests import the packages without installing."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """A started and initialised 3-node cluster of real processes."""
    from tests.cluster import Cluster

    c = Cluster(tmp_path, n=getattr(request, "param", 3))
    c.start_all()
    try:
        c.init()
        yield c
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for i in sorted(c.ports):
                print(f"----- n{i} log -----\n{c.log_tail(i, 60)}")
        c.stop_all()


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One started and initialised 3-node cluster shared by a module's tests (starting one
    costs seconds; use distinct table names per test)."""
    from tests.cluster import running

    with running(tmp_path_factory.mktemp("cluster"), n=3) as c:
        yield c


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep
