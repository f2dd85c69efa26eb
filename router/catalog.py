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


class CatalogCache:
    """Latest catalog seen by this node; replaced only by a newer version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._catalog = pb.Catalog()

    @property
    def version(self) -> int:
        return int(self._catalog.version)

    def snapshot(self) -> pb.Catalog:
        with self._lock:
            return self._catalog

    def update(self, catalog: pb.Catalog) -> bool:
        """Install ``catalog`` if it is newer; returns whether it was installed."""
        with self._lock:
            if catalog.version < self._catalog.version:
                return False
            self._catalog = catalog
            return True

    def table(self, name: str, database: str = "") -> pb.TableDescriptor | None:
        low, db = name.lower(), database_key(database)
        for t in self.snapshot().tables:
            if t.name.lower() == low and database_key(t.database) == db:
                found: pb.TableDescriptor = t
                return found
        return None

    def ranges_of(self, table: str, database: str = "") -> list[pb.RangeDescriptor]:
        low, db = table.lower(), database_key(database)
        return [
            r
            for r in self.snapshot().ranges
            if r.table.lower() == low and database_key(r.database) == db
        ]

    def database_exists(self, name: str) -> bool:
        db = database_key(name)
        return db == DEFAULT_DATABASE or any(
            d.name.lower() == db for d in self.snapshot().databases
        )

    def range(self, range_id: int) -> pb.RangeDescriptor | None:
        for r in self.snapshot().ranges:
            if r.range_id == range_id:
                found: pb.RangeDescriptor = r
                return found
        return None

    def node(self, node_id: int) -> pb.NodeInfo | None:
        for n in self.snapshot().nodes:
            if n.node_id == node_id:
                found: pb.NodeInfo = n
                return found
        return None


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
