"""The single deterministic state machine: ``apply(engine, command, index)``.

Every replica of every range applies every committed entry through this function. It depends
only on the engine's prior state and the entry (invariant 1): the gateway has already turned
``random()``, ``datetime('now')`` and friends into literals; replica ids and range ids are in
the command or derived from the state.

Two kinds of failure (as in rqlite): a SQL error is a *result*, recorded identically by every
replica; an engine I/O error raises ``EngineFailure`` and the replica stops.
"""

from __future__ import annotations

from proto import pb
from storage import (
    Engine,
    SqlFailure,
    StatementResult,
    params_from_proto,
    row_from_proto,
    row_to_proto,
    sqlstate,
)

from .meta import apply_meta


def result_to_proto(res: StatementResult, index: int) -> pb.CommandResult:
    out = pb.CommandResult(
        columns=list(res.columns),
        rows=[row_to_proto(r) for r in res.rows],
        rows_affected=res.rows_affected,
        last_insert_rowid=res.last_insert_rowid,
        returns_rows=res.returns_rows,
        applied_index=index,
    )
    if res.error is not None:
        out.error.code = res.error.code
        out.error.message = res.error.message
    return out


def _change_replicas(engine: Engine, change: pb.ChangeReplicas) -> StatementResult:
    """Validate and record a membership change (deterministic: depends on the stored config)."""
    current = engine.replica_config()
    generation = current[2] if current else 1
    voters = list(change.voters)
    if change.generation != generation + 1:
        return StatementResult(
            error=SqlFailure(
                sqlstate.SERIALIZATION_FAILURE,
                f"replica change for generation {change.generation} but the range is at "
                f"{generation}: retry with a fresh descriptor",
            )
        )
    if current is not None:
        before, after = set(current[0]), set(voters)
        if len(before ^ after) > 1:
            return StatementResult(
                error=SqlFailure(
                    sqlstate.INVALID_PARAMETER,
                    "a replica change may add or remove at most one voter at a time",
                )
            )
    if not voters:
        return StatementResult(
            error=SqlFailure(sqlstate.INVALID_PARAMETER, "a range needs at least one voter")
        )
    engine.set_replica_config(voters, list(change.non_voters), change.generation)
    return StatementResult(rows_affected=0)


SPLIT_BASE_INDEX = 10
"""The applied index a split's right-hand replica starts at (its log holds one placeholder
entry there, so a replica created any other way needs a snapshot, never a replay)."""


def span_mismatch(engine: Engine, span: pb.Span) -> SqlFailure | None:
    """A refusal if this replica does not hold exactly ``span`` (the gateway's plan)."""
    stored = engine.span()
    start, end = (stored[1], stored[2]) if stored is not None else (b"", b"")
    if (start, end) == (span.start_key, span.end_key):
        return None
    return SqlFailure(
        sqlstate.RANGE_MOVED,
        "the range's span changed (split or merge): refresh the descriptor and retry",
    )


def schema_mismatch(engine: Engine, version: int) -> SqlFailure | None:
    """A refusal if the statement was planned against another schema version (0: unchecked)."""
    if not version or engine.schema_version() == version:
        return None
    return SqlFailure(
        sqlstate.SCHEMA_CHANGED,
        f"the table's schema is at version {engine.schema_version()}, the statement was"
        f" planned for {version}: refresh the catalog and retry",
    )


def stale_plan(
    engine: Engine, planned: pb.SqlWrite | pb.SqlRead | pb.TxnPrepare | pb.TxnCommit
) -> SqlFailure | None:
    """Why a statement planned against ``planned.span`` / ``planned.schema_version`` must be
    re-planned (AQ006 / AQ007), or None."""
    moved = span_mismatch(engine, planned.span) if planned.HasField("span") else None
    return moved or schema_mismatch(engine, planned.schema_version)


def _span_guard(engine: Engine) -> SqlFailure | None:
    if engine.rows_outside_span():
        return SqlFailure(
            sqlstate.FEATURE_NOT_SUPPORTED,
            "the write would put a row outside this range's span (a key moving to another"
            " range, or an automatic rowid in a table split into several ranges); writes"
            " across ranges arrive with transactions: give the key explicitly",
        )
    return None


def split_refusal(engine: Engine, split: pb.SplitRange) -> SqlFailure | None:
    """Why this replica cannot apply ``split`` (deterministic), or None."""
    moved = span_mismatch(engine, split.span)
    if moved is not None:
        return moved
    start, end = split.span.start_key, split.span.end_key
    key = split.split_key
    if not key or key <= start or (end and key >= end):
        return SqlFailure(sqlstate.INVALID_PARAMETER, "the split key is not inside the range")
    return _intents_pending(engine, "split")


def _intents_pending(engine: Engine, what: str) -> SqlFailure | None:
    """Prepared transactions pin the range's span and schema until they are resolved."""
    if engine.intents():
        return SqlFailure(
            sqlstate.SERIALIZATION_FAILURE,
            f"cannot {what} while prepared transactions are being resolved on this range; retry",
        )
    return None


def _split_left(engine: Engine, split: pb.SplitRange) -> StatementResult:
    refusal = split_refusal(engine, split)
    if refusal is not None:
        return StatementResult(error=refusal)
    stored = engine.span()
    table = stored[0] if stored is not None else split.table
    moved = engine.delete_from_key(table, split.split_key)
    voters, non_voters, generation = split_config(engine, split)
    engine.set_replica_config(voters, non_voters, generation)
    engine.set_span(table, split.span.start_key, split.split_key, split.database)
    return StatementResult(
        columns=("moved_rows", "generation"), rows=((moved, generation),), returns_rows=True
    )


def split_config(engine: Engine, split: pb.SplitRange) -> tuple[list[int], list[int], int]:
    """Membership and generation both halves have after ``split``."""
    current = engine.replica_config()
    if current is None:
        return sorted(split.voters), sorted(split.non_voters), 2
    return current[0], current[1], current[2] + 1


_TXN_OPS = ("txn_prepare", "txn_commit", "txn_resolve", "txn_recover", "txn_forget")
COMMITTED, ABORTED = "COMMITTED", "ABORTED"


def _apply_txn(eng: Engine, command: pb.Command, index: int) -> pb.CommandResult:
    """Transaction entries (see raftgroups/txn.py and sqlfront/DESIGN.md "Transactions").
    Deterministic: every replica reaches the same outcome from the same state."""
    op = command.WhichOneof("op")
    out = pb.CommandResult(applied_index=index)
    if op in ("txn_prepare", "txn_commit"):
        step = command.txn_prepare if op == "txn_prepare" else command.txn_commit
        moved = stale_plan(eng, step)
        if moved is not None:
            out.error.code, out.error.message = moved.code, moved.message
            return out
    if op == "txn_prepare":
        p = command.txn_prepare
        eng.put_intent(p.txn.txn_id, p.changeset, p.record_range, index)
    elif op == "txn_commit":
        c = command.txn_commit
        if c.record:
            record = eng.txn_record(c.txn.txn_id)
            if record is not None and record[0] == ABORTED:
                out.error.code = sqlstate.SERIALIZATION_FAILURE
                out.error.message = (
                    "restart transaction: it was aborted while its coordinator was unreachable"
                )
                return out
            eng.put_txn_record(c.txn.txn_id, COMMITTED, ",".join(map(str, c.participants)))
        if c.changeset:
            eng.apply_changeset(c.changeset)
        out.txn_status = COMMITTED
    elif op == "txn_resolve":
        r = command.txn_resolve
        changes = eng.take_intent(r.txn_id)
        if changes is not None and r.commit:
            eng.apply_changeset(changes)
    elif op == "txn_recover":
        txn_id = command.txn_recover.txn_id
        record = eng.txn_record(txn_id)
        if record is None:
            eng.put_txn_record(txn_id, ABORTED, "")
            out.txn_status = ABORTED
        else:
            out.txn_status = record[0]
    else:
        eng.drop_txn_record(command.txn_forget.txn_id)
    return out


def apply(engine: Engine, command: pb.Command, index: int, term: int = 0) -> pb.CommandResult:
    """Apply one committed entry at ``index``; returns what the proposer reports back.

    Entries at or below the engine's applied index were applied before a restart and are
    skipped (each entry is applied exactly once: invariant 2).
    """
    if index <= engine.applied_index:
        return pb.CommandResult(applied_index=index)
    op = command.WhichOneof("op")
    if op == "read":
        # Reads change nothing; the proposing replica serves them at this log position.
        return pb.CommandResult(applied_index=index)

    def run(eng: Engine) -> pb.CommandResult:
        if command.session_id:
            prior = eng.session_result(command.session_id)
            if prior is not None and command.seq <= prior[0]:
                if command.seq == prior[0]:
                    # A retry of an already-applied write: answer as the first time.
                    cached = pb.CommandResult()
                    cached.ParseFromString(prior[1])
                    return cached
                stale = pb.CommandResult(applied_index=index)
                stale.error.code = sqlstate.PROTOCOL_VIOLATION
                stale.error.message = (
                    f"request sequence {command.seq} is older than {prior[0]} for this session"
                )
                return stale
        if op == "write":
            w = command.write
            moved = stale_plan(eng, w)
            if moved is None and w.new_schema_version:
                moved = _intents_pending(eng, "change the schema")
            guard = _span_guard if eng.span() is not None else None
            if moved is not None:
                res = StatementResult(error=moved)
            elif w.insert_table and eng.rowids_exhausted(w.insert_table):
                res = StatementResult(
                    error=SqlFailure(
                        sqlstate.DATA_EXCEPTION,
                        f"table {w.insert_table} holds the largest rowid (2^63-1): SQLite would"
                        " pick a random rowid for this insert, which replicas cannot agree on",
                    )
                )
            elif w.batch:
                res = eng.execute_many(
                    w.sql,
                    [row_from_proto(r) for r in w.batch],
                    verify=(lambda: guard(eng)) if guard else None,
                )
            else:
                res = eng.execute(
                    w.sql,
                    params_from_proto(w.params, w.named_params),
                    verify=(lambda: guard(eng)) if guard else None,
                )
                if w.new_schema_version and res.error is None:
                    span = eng.span()
                    table = span[0] if span else w.ddl_table
                    if w.rename_table_to:
                        table = w.rename_table_to
                        if span is not None:
                            eng.set_span(table, span[1], span[2], eng.span_database())
                    eng.set_schema_version(table, w.new_schema_version, w.ddl_database)
        elif op == "meta":
            res = apply_meta(eng, command.meta)
        elif op == "barrier":
            res = StatementResult()
        elif op == "split":
            res = _split_left(eng, command.split)
        elif op == "change_replicas":
            res = _change_replicas(eng, command.change_replicas)
        elif op in _TXN_OPS:
            return _apply_txn(eng, command, index)
        elif op == "check":
            digest = eng.checksum()
            eng.record_check(index, digest)
            res = StatementResult(
                columns=("applied_index", "checksum"), rows=((index, digest),), returns_rows=True
            )
        else:  # pragma: no cover - decode_command rejects commands without an op
            raise ValueError(f"unknown command {op!r}")
        out = result_to_proto(res, index)
        refused = res.error is not None and res.error.code in (
            sqlstate.RANGE_MOVED,
            sqlstate.SCHEMA_CHANGED,
        )
        if command.session_id and not refused:
            # A refusal ran nothing: the retry (to the right range, which may be a copy of
            # this one made by a later split) must not find it recorded.
            eng.record_session(command.session_id, command.seq, out.SerializeToString())
        return out

    return engine.apply(index, run, term)
