"""The gateway's cache of the catalog (nodes, tables, range descriptors) by version."""

from __future__ import annotations

import threading

from proto import pb
from raftgroups.meta import DEFAULT_DATABASE, db_name


def database_key(name: str) -> str:
    """A database name for comparisons: "" is defaultdb; case-insensitive.

    >>> database_key(""), database_key("Shop")
    ('defaultdb', 'shop')
    """
    return db_name(name).lower()


class _Index:
    """Lookups into one catalog version (built once per version: with a thousand ranges,
    linear scans per lookup made the background loop's per-range checks quadratic)."""

    def __init__(self, catalog: pb.Catalog) -> None:
        self.tables: dict[tuple[str, str], pb.TableDescriptor] = {}
        for t in catalog.tables:
            self.tables.setdefault((t.name.lower(), database_key(t.database)), t)
        self.ranges: dict[int, pb.RangeDescriptor] = {}
        self.ranges_of: dict[tuple[str, str], list[pb.RangeDescriptor]] = {}
        for r in catalog.ranges:
            self.ranges.setdefault(r.range_id, r)
            self.ranges_of.setdefault((r.table.lower(), database_key(r.database)), []).append(r)
        self.nodes: dict[int, pb.NodeInfo] = {}
        for n in catalog.nodes:
            self.nodes.setdefault(n.node_id, n)
        self.databases = {d.name.lower() for d in catalog.databases}


class CatalogCache:
    """Latest catalog seen by this node; replaced only by a newer version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._catalog = pb.Catalog()
        self._index = _Index(self._catalog)

    @property
    def version(self) -> int:
        return int(self._catalog.version)

    def snapshot(self) -> pb.Catalog:
        with self._lock:
            return self._catalog

    def _current(self) -> _Index:
        with self._lock:
            return self._index

    def update(self, catalog: pb.Catalog) -> bool:
        """Install ``catalog`` if it is newer; returns whether it was installed."""
        with self._lock:
            if catalog.version < self._catalog.version:
                return False
            if catalog is not self._catalog and (
                catalog.version > self._catalog.version or not catalog.version
            ):
                self._catalog = catalog
                self._index = _Index(catalog)
            return True

    def table(self, name: str, database: str = "") -> pb.TableDescriptor | None:
        return self._current().tables.get((name.lower(), database_key(database)))

    def ranges_of(self, table: str, database: str = "") -> list[pb.RangeDescriptor]:
        return list(self._current().ranges_of.get((table.lower(), database_key(database)), ()))

    def database_exists(self, name: str) -> bool:
        db = database_key(name)
        return db == DEFAULT_DATABASE or db in self._current().databases

    def range(self, range_id: int) -> pb.RangeDescriptor | None:
        return self._current().ranges.get(range_id)

    def node(self, node_id: int) -> pb.NodeInfo | None:
        return self._current().nodes.get(node_id)


def range_for_key(ranges: list[pb.RangeDescriptor], key: bytes) -> pb.RangeDescriptor | None:
    """The range whose span ``[start_key, end_key)`` holds ``key`` (empty end = +inf).

    >>> rs = [pb.RangeDescriptor(range_id=2, end_key=b"m"), pb.RangeDescriptor(range_id=3,
    ...       start_key=b"m")]
    >>> range_for_key(rs, b"a").range_id, range_for_key(rs, b"m").range_id
    (2, 3)
    """
    for r in ranges:
        if r.start_key <= key and (not r.end_key or key < r.end_key):
            return r
    return None


def ranges_overlapping(
    ranges: list[pb.RangeDescriptor], lo: bytes | None, hi: bytes | None
) -> list[pb.RangeDescriptor]:
    """Ranges (in key order) that can hold a key in ``[lo, hi]`` (None = unbounded; both
    bounds inclusive, which is conservative for exclusive ones)."""
    out = []
    for r in sorted(ranges, key=lambda d: d.start_key):
        if hi is not None and r.start_key > hi:
            continue
        if lo is not None and r.end_key and r.end_key <= lo:
            continue
        out.append(r)
    return out


__all__ = [
    "DEFAULT_DATABASE",
    "CatalogCache",
    "database_key",
    "range_for_key",
    "ranges_overlapping",
]
