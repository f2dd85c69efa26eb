"""The durable Raft log: one SQLite file per node holding every range's entries and hard state.

pysyncobj's own journal (an mmap'd file and a pickled ``.meta`` file) is never fsync'd. Ours:

* every group's entries, current term, vote and commit index live in ``DATA_DIR/raft.log.db``
  (apsw, WAL, ``synchronous=FULL``);
* writes made while the store's tick loop runs go into one open transaction; at the end of the
  iteration the store calls ``LogStore.flush()`` — one fsync for every group's appends (group
  commit) — and only *then* releases the Raft messages produced during the iteration. So an
  entry is durable before a follower acknowledges it, and a term/vote is durable before any
  vote request or grant that reflects it leaves the node (invariant 3);
* a failed write or flush raises ``LogFailure``; the store stops every replica of the node,
  which then acknowledges nothing.

``RangeJournal`` implements pysyncobj's ``Journal`` interface on top of it (injected through
``install()``, which makes pysyncobj's ``createJournal`` return the journal object we pass as
``journalFile``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, cast

import apsw
import pysyncobj.syncobj
from pysyncobj.journal import Journal

from .errors import RaftError

Entry = tuple[bytes, int, int]  # (command, index, term), pysyncobj's shape


class LogFailure(RaftError):
    """The durable log could not be written: the node must stop acknowledging."""


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries(range_id INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " term INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (range_id, idx)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS hardstate(range_id INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
    " voted_for INTEGER, commit_index INTEGER NOT NULL)",
)


class LogStore:
    """All ranges' Raft logs on this node, with group commit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = apsw.Connection(path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        for stmt in _SCHEMA:
            self._conn.execute(stmt)
        self._in_txn = False
        self.failed: str | None = None
        self.flushes = 0
        self.fault_next_write = False  # test hook: make the next write fail like a bad disk

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            if self.failed is not None:
                raise LogFailure(self.failed)
            try:
                if self.fault_next_write:
                    self.fault_next_write = False
                    raise apsw.IOError("injected disk fault")
                if not self._in_txn:
                    self._conn.execute("BEGIN")
                    self._in_txn = True
                self._conn.execute(sql, params)
            except apsw.Error as exc:
                self._fail(f"raft log write failed: {exc}")
                raise LogFailure(self.failed or str(exc)) from exc

    def _fail(self, reason: str) -> None:
        self.failed = reason
        try:
            if self._in_txn:
                self._conn.execute("ROLLBACK")
        except apsw.Error:
            pass
        self._in_txn = False

    @property
    def writing(self) -> bool:
        """Whether writes are waiting for the next ``flush``."""
        return self._in_txn

    def flush(self) -> None:
        """Commit (fsync) everything written since the last flush."""
        with self._lock:
            if self.failed is not None:
                raise LogFailure(self.failed)
            if not self._in_txn:
                return
            try:
                self._conn.execute("COMMIT")
            except apsw.Error as exc:
                self._fail(f"raft log fsync failed: {exc}")
                raise LogFailure(self.failed or str(exc)) from exc
            self._in_txn = False
            self.flushes += 1

    def load(self, range_id: int) -> tuple[list[Entry], tuple[int, int | None, int]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT data, idx, term FROM entries WHERE range_id = ? ORDER BY idx", (range_id,)
            ).fetchall()
            hs = self._conn.execute(
                "SELECT term, voted_for, commit_index FROM hardstate WHERE range_id = ?",
                (range_id,),
            ).fetchone()
        entries = [
            (bytes(cast(bytes, d)), int(cast(int, i)), int(cast(int, t))) for d, i, t in rows
        ]
        state = (
            (int(hs[0]), None if hs[1] is None else int(hs[1]), int(hs[2])) if hs else (0, None, 1)
        )
        return entries, state

    def append(self, range_id: int, entry: Entry) -> None:
        self._write(
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
            (range_id, entry[1], entry[2], entry[0]),
        )

    def delete_from(self, range_id: int, idx: int) -> None:
        self._write("DELETE FROM entries WHERE range_id = ? AND idx >= ?", (range_id, idx))

    def delete_before(self, range_id: int, idx: int) -> None:
        self._write("DELETE FROM entries WHERE range_id = ? AND idx < ?", (range_id, idx))

    def set_hardstate(self, range_id: int, term: int, voted_for: int | None, commit: int) -> None:
        self._write(
            "INSERT OR REPLACE INTO hardstate VALUES (?, ?, ?, ?)",
            (range_id, term, voted_for, commit),
        )

    def drop(self, range_id: int) -> None:
        self._write("DELETE FROM entries WHERE range_id = ?", (range_id,))
        self._write("DELETE FROM hardstate WHERE range_id = ?", (range_id,))
        self.flush()

    def close(self) -> None:
        with self._lock:
            if self._in_txn and self.failed is None:
                try:
                    self._conn.execute("COMMIT")
                except apsw.Error:
                    pass
            self._conn.close()


class RangeJournal(Journal):  # type: ignore[misc]
    """pysyncobj's ``Journal`` for one range, kept in memory and persisted in the ``LogStore``."""

    def __init__(self, store: LogStore, range_id: int) -> None:
        self._store = store
        self.range_id = range_id
        self._entries, (self._term, self._voted_for, self._commit) = store.load(range_id)
        self._commit_dirty = False

    # -- entries ---------------------------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        if self._entries and idx != self._entries[-1][1] + 1:
            raise AssertionError(f"range {self.range_id}: log gap appending {idx}")
        entry = (bytes(command), int(idx), int(term))
        self._store.append(self.range_id, entry)
        self._entries.append(entry)
        if self._commit_dirty:
            self._write_hardstate()

    def clear(self) -> None:
        if self._entries:
            self._store.delete_from(self.range_id, 0)
        self._entries = []

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj API)
        if entryFrom < len(self._entries):
            self._store.delete_from(self.range_id, self._entries[entryFrom][1])
            del self._entries[entryFrom:]

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802 (pysyncobj API)
        if entryTo > 0 and self._entries:
            cut = self._entries[min(entryTo, len(self._entries)) - 1][1] + 1
            self._store.delete_before(self.range_id, cut)
            del self._entries[:entryTo]

    def __getitem__(self, item: Any) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def term_at(self, idx: int) -> int | None:
        """The term of the entry at log index ``idx``, or None when not in the log."""
        if not self._entries:
            return None
        pos = idx - self._entries[0][1]
        if 0 <= pos < len(self._entries):
            return self._entries[pos][2]
        return None

    @property
    def last_index(self) -> int:
        return self._entries[-1][1] if self._entries else 0

    # -- hard state ------------------------------------------------------------------------

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802
        # Raft does not need the commit index durable (a restarted replica relearns it from
        # the leader; the engine keeps its own applied index). It is written with the next
        # write that is made durable anyway, never alone: no fsync per commit.
        if raftCommitIndex != self._commit:
            self._commit = int(raftCommitIndex)
            if self._store.writing:
                self._write_hardstate()
            else:
                self._commit_dirty = True

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return self._commit

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:  # noqa: N802
        self._term = int(term)
        self._voted_for = None if votedForNodeId is None else int(votedForNodeId)
        self._write_hardstate()

    def _write_hardstate(self) -> None:
        self._store.set_hardstate(self.range_id, self._term, self._voted_for, self._commit)
        self._commit_dirty = False

    def getCurrentTerm(self) -> int:  # noqa: N802
        return self._term

    def getVotedForNodeId(self) -> int | None:  # noqa: N802
        return self._voted_for

    def onOneSecondTimer(self) -> None:  # noqa: N802
        return None

    def flush(self) -> None:
        return None

    def _destroy(self) -> None:
        return None


_original_create_journal = pysyncobj.syncobj.createJournal


def _create_journal(journal_file: Any = None) -> Any:
    if isinstance(journal_file, RangeJournal):
        return journal_file
    return _original_create_journal(journal_file)


class _NullPoller:
    """pysyncobj polls sockets of its own transport each tick; ours has none. A real poller
    costs a syscall per group per tick, and its wake-up pipe two file descriptors per group
    (with ``select``, fds past 1024 crash the tick)."""

    def subscribe(self, descr: Any, callback: Any, eventMask: Any) -> None:  # noqa: N803
        return None

    def unsubscribe(self, descr: Any) -> None:
        return None

    def poll(self, timeout: float) -> None:
        return None


def install() -> None:
    """Injections into pysyncobj (idempotent): accept a ``RangeJournal`` as ``journalFile``,
    no per-group poller, no per-group wake-up pipe (the store's loop is woken instead)."""
    pysyncobj.syncobj.createJournal = _create_journal
    pysyncobj.syncobj.createPoller = lambda poller_type: _NullPoller()
    pysyncobj.syncobj.PIPE_NOTIFIER_ENABLED = False
