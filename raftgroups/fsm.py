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
            if w.insert_table and eng.rowids_exhausted(w.insert_table):
                res = StatementResult(
                    error=SqlFailure(
                        sqlstate.DATA_EXCEPTION,
                        f"table {w.insert_table} holds the largest rowid (2^63-1): SQLite would"
                        " pick a random rowid for this insert, which replicas cannot agree on",
                    )
                )
            elif w.batch:
                res = eng.execute_many(w.sql, [row_from_proto(r) for r in w.batch])
            else:
                res = eng.execute(w.sql, params_from_proto(w.params, w.named_params))
        elif op == "meta":
            res = apply_meta(eng, command.meta)
        elif op == "barrier":
            res = StatementResult()
        elif op == "change_replicas":
            res = _change_replicas(eng, command.change_replicas)
        elif op == "check":
            digest = eng.checksum()
            eng.record_check(index, digest)
            res = StatementResult(
                columns=("applied_index", "checksum"), rows=((index, digest),), returns_rows=True
            )
        else:  # pragma: no cover - decode_command rejects commands without an op
            raise ValueError(f"unknown command {op!r}")
        out = result_to_proto(res, index)
        if command.session_id:
            eng.record_session(command.session_id, command.seq, out.SerializeToString())
        return out

    return engine.apply(index, run, term)
