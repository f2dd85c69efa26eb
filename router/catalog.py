"""The gateway's cache of the catalog (nodes, tables, range descriptors) by version."""

from __future__ import annotations

import threading

from proto import pb


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

    def table(self, name: str) -> pb.TableDescriptor | None:
        low = name.lower()
        for t in self.snapshot().tables:
            if t.name.lower() == low:
                found: pb.TableDescriptor = t
                return found
        return None

    def ranges_of(self, table: str) -> list[pb.RangeDescriptor]:
        low = table.lower()
        return [r for r in self.snapshot().ranges if r.table.lower() == low]

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
