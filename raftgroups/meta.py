"""The catalog kept in the meta range (range 1): nodes, tables, indexes, range descriptors.

These functions run inside ``apply`` on every meta replica, so they depend only on the engine's
prior state and the operation (invariant 1): replica choices and ids come in the command or are
derived from the state (``max(range_id) + 1``).
"""

from __future__ import annotations

from proto import pb
from storage import Engine, SqlFailure, StatementResult, sqlstate

META_RANGE_ID = 1
DEFAULT_DATABASE = "defaultdb"


def db_name(name: str) -> str:
    """A database name as stored ("" means defaultdb)."""
    return name or DEFAULT_DATABASE


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS _atlas_meta_version(id INTEGER PRIMARY KEY CHECK (id = 1),"
    " version INTEGER NOT NULL, max_range_id INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO _atlas_meta_version VALUES (1, 0, 1)",
    "CREATE TABLE IF NOT EXISTS _atlas_meta_nodes(node_id INTEGER PRIMARY KEY,"
    " address TEXT NOT NULL, locality BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS _atlas_meta_databases(name TEXT PRIMARY KEY COLLATE NOCASE,"
    " primary_region TEXT NOT NULL DEFAULT '', regions TEXT NOT NULL DEFAULT '',"
    " survival TEXT NOT NULL DEFAULT 'zone')",
    "CREATE TABLE IF NOT EXISTS _atlas_meta_tables(table_id INTEGER PRIMARY KEY,"
    " database TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " create_sql TEXT NOT NULL, schema_version INTEGER NOT NULL,"
    " locality TEXT NOT NULL DEFAULT '', UNIQUE(database, name))",
    "CREATE TABLE IF NOT EXISTS _atlas_meta_indexes(database TEXT NOT NULL COLLATE NOCASE,"
    " name TEXT NOT NULL COLLATE NOCASE, table_name TEXT NOT NULL COLLATE NOCASE,"
    " index_sql TEXT NOT NULL, PRIMARY KEY(database, name))",
    "CREATE TABLE IF NOT EXISTS _atlas_meta_ranges(range_id INTEGER PRIMARY KEY,"
    " database TEXT NOT NULL COLLATE NOCASE, table_name TEXT NOT NULL COLLATE NOCASE,"
    " start_key BLOB NOT NULL, end_key BLOB NOT NULL, replicas TEXT NOT NULL,"
    " generation INTEGER NOT NULL, non_voters TEXT NOT NULL DEFAULT '')",
)


def _table_exists(engine: Engine, database: str, name: str) -> bool:
    return bool(
        _q(
            engine,
            "SELECT 1 FROM _atlas_meta_tables WHERE database = ? AND name = ?",
            (db_name(database), name),
        ).rows
    )


def _database_exists(engine: Engine, database: str) -> bool:
    if db_name(database).lower() == DEFAULT_DATABASE:
        return True
    return bool(_q(engine, "SELECT 1 FROM _atlas_meta_databases WHERE name = ?", (database,)).rows)


def _q(engine: Engine, sql: str, params: tuple[object, ...] = ()) -> StatementResult:
    res = engine.execute(sql, params)
    if res.error is not None:  # our own catalog SQL failing is a bug, not a user error
        raise RuntimeError(f"catalog statement failed: {res.error.message}: {sql}")
    return res


def ensure_schema(engine: Engine) -> None:
    """Create the catalog tables (idempotent; runs inside every meta entry), and add the
    columns later versions introduced to a catalog made before them."""
    for stmt in _SCHEMA:
        _q(engine, stmt)
    columns = {str(r[1]) for r in _q(engine, "PRAGMA table_info(_atlas_meta_tables)").rows}
    if "converting" not in columns:
        _q(engine, "ALTER TABLE _atlas_meta_tables ADD COLUMN converting TEXT NOT NULL DEFAULT ''")


def _bump(engine: Engine) -> None:
    _q(engine, "UPDATE _atlas_meta_version SET version = version + 1 WHERE id = 1")


def _fail(code: str, message: str) -> StatementResult:
    return StatementResult(error=SqlFailure(code, message))


def apply_meta(engine: Engine, op: pb.MetaOp) -> StatementResult:
    """Apply one catalog operation; user errors (duplicate table ...) are results."""
    ensure_schema(engine)
    kind = op.WhichOneof("op")
    if kind == "register_node":
        n = op.register_node
        _q(
            engine,
            "INSERT OR REPLACE INTO _atlas_meta_nodes VALUES (?, ?, ?)",
            (n.node_id, n.address, n.locality.SerializeToString()),
        )
        _bump(engine)
        return StatementResult(rows_affected=1)
    if kind == "create_table":
        ct = op.create_table
        db = db_name(ct.database)
        if not _database_exists(engine, db):
            return _fail(sqlstate.UNDEFINED_DATABASE, f"database {db} does not exist")
        if _table_exists(engine, db, ct.name):
            if ct.if_not_exists:
                return StatementResult(rows_affected=0, columns=("range_id",), rows=((0,),))
            return _fail(sqlstate.DUPLICATE_TABLE, f"table {ct.name} already exists")
        (max_id,) = _q(engine, "SELECT max_range_id FROM _atlas_meta_version").rows[0]
        range_id = int(max_id) + 1
        _q(engine, "UPDATE _atlas_meta_version SET max_range_id = ? WHERE id = 1", (range_id,))
        _q(
            engine,
            "INSERT INTO _atlas_meta_tables(database, name, create_sql, schema_version, locality)"
            " VALUES (?, ?, ?, 1, ?)",
            (db, ct.name, ct.create_sql, ct.locality),
        )
        _q(
            engine,
            "INSERT INTO _atlas_meta_ranges(range_id, database, table_name, start_key, end_key,"
            " replicas, generation, non_voters) VALUES (?, ?, ?, x'', x'', ?, 1, '')",
            (range_id, db, ct.name, ",".join(str(r) for r in ct.replicas)),
        )
        _bump(engine)
        return StatementResult(rows_affected=1, columns=("range_id",), rows=((range_id,),))
    if kind == "drop_table":
        dt = op.drop_table
        db = db_name(dt.database)
        if not _table_exists(engine, db, dt.name):
            if dt.if_exists:
                return StatementResult(rows_affected=0)
            return _fail(sqlstate.UNDEFINED_TABLE, f"no such table: {dt.name}")
        _drop_tables(engine, db, dt.name)
        _bump(engine)
        return StatementResult(rows_affected=1)
    if kind == "add_index":
        ai = op.add_index
        db = db_name(ai.database)
        _q(
            engine,
            "INSERT OR REPLACE INTO _atlas_meta_indexes VALUES (?, ?, ?, ?)",
            (db, ai.index_name, ai.table, ai.index_sql),
        )
        _q(
            engine,
            "UPDATE _atlas_meta_tables SET schema_version = schema_version + 1"
            " WHERE database = ? AND name = ?",
            (db, ai.table),
        )
        _bump(engine)
        return StatementResult(rows_affected=1)
    if kind == "update_range":
        ur = op.update_range
        row = _q(
            engine, "SELECT generation FROM _atlas_meta_ranges WHERE range_id = ?", (ur.range_id,)
        ).rows
        if not row:
            return _fail(sqlstate.RANGE_NOT_FOUND, f"no range {ur.range_id}")
        if int(row[0][0]) + 1 != ur.generation:
            return _fail(
                sqlstate.SERIALIZATION_FAILURE,
                f"range {ur.range_id} is at generation {row[0][0]}, not {ur.generation - 1}",
            )
        _q(
            engine,
            "UPDATE _atlas_meta_ranges SET replicas = ?, non_voters = ?, generation = ?"
            " WHERE range_id = ?",
            (
                ",".join(map(str, ur.voters)),
                ",".join(map(str, ur.non_voters)),
                ur.generation,
                ur.range_id,
            ),
        )
        _bump(engine)
        return StatementResult(rows_affected=1)
    if kind == "allocate_range_ids":
        count = max(1, int(op.allocate_range_ids.count))
        (max_id,) = _q(engine, "SELECT max_range_id FROM _atlas_meta_version").rows[0]
        _q(
            engine,
            "UPDATE _atlas_meta_version SET max_range_id = ? WHERE id = 1",
            (int(max_id) + count,),
        )
        _bump(engine)
        return StatementResult(rows_affected=0, columns=("first_id",), rows=((int(max_id) + 1,),))
    if kind == "upsert_ranges":
        changed = 0
        for d in op.upsert_ranges.ranges:
            if not _table_exists(engine, d.database, d.table):
                continue  # the table was dropped meanwhile
            row = _q(
                engine,
                "SELECT generation, start_key, end_key, replicas, non_voters"
                " FROM _atlas_meta_ranges WHERE range_id = ?",
                (d.range_id,),
            ).rows
            fields = (
                bytes(d.start_key),
                bytes(d.end_key),
                ",".join(map(str, d.replicas)),
                ",".join(map(str, d.non_voters)),
            )
            if row:
                gen = int(row[0][0])
                stored = (bytes(row[0][1]), bytes(row[0][2]), str(row[0][3]), str(row[0][4]))
                if d.generation < gen or (d.generation == gen and stored == fields):
                    continue
            _q(
                engine,
                "INSERT OR REPLACE INTO _atlas_meta_ranges(range_id, database, table_name,"
                " start_key, end_key, replicas, non_voters, generation)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (d.range_id, db_name(d.database), d.table, *fields, d.generation),
            )
            changed += 1
        if changed:
            _bump(engine)
        return StatementResult(rows_affected=changed)
    if kind == "alter_table":
        at = op.alter_table
        db = db_name(at.database)
        if not _table_exists(engine, db, at.name):
            return _fail(sqlstate.UNDEFINED_TABLE, f"no such table: {at.name}")
        _q(
            engine,
            "UPDATE _atlas_meta_tables SET create_sql = ?, schema_version = ?"
            " WHERE database = ? AND name = ?",
            (at.create_sql, at.schema_version, db, at.name),
        )
        _q(
            engine,
            "DELETE FROM _atlas_meta_indexes WHERE database = ? AND table_name = ?",
            (db, at.name),
        )
        for name, sql in zip(at.index_names, at.index_sql, strict=True):
            _q(
                engine,
                "INSERT INTO _atlas_meta_indexes VALUES (?, ?, ?, ?)",
                (db, name, at.name, sql),
            )
        _bump(engine)
        return StatementResult(rows_affected=1)
    if kind == "drop_index":
        di = op.drop_index
        db = db_name(di.database)
        _q(
            engine,
            "UPDATE _atlas_meta_tables SET schema_version = schema_version + 1 WHERE database = ?"
            " AND name = (SELECT table_name FROM _atlas_meta_indexes WHERE database = ?"
            " AND name = ?)",
            (db, db, di.index_name),
        )
        _q(
            engine,
            "DELETE FROM _atlas_meta_indexes WHERE database = ? AND name = ?",
            (db, di.index_name),
        )
        _bump(engine)
        return StatementResult(rows_affected=1)
    if kind == "create_database":
        cd = op.create_database
        if _database_exists(engine, cd.name):
            if cd.if_not_exists:
                return StatementResult(rows_affected=0)
            return _fail(sqlstate.DUPLICATE_DATABASE, f"database {cd.name} already exists")
        regions = [cd.primary_region] if cd.primary_region else []
        regions += [r for r in cd.regions if r not in regions]
        _q(
            engine,
            "INSERT INTO _atlas_meta_databases VALUES (?, ?, ?, ?)",
            (cd.name, cd.primary_region, ",".join(regions), cd.survival or "zone"),
        )
        _bump(engine)
        return StatementResult(rows_affected=1)
    if kind == "drop_database":
        dd = op.drop_database
        if dd.name.lower() == DEFAULT_DATABASE:
            return _fail(sqlstate.INVALID_PARAMETER, f"{DEFAULT_DATABASE} cannot be dropped")
        if not _database_exists(engine, dd.name):
            if dd.if_exists:
                return StatementResult(rows_affected=0)
            return _fail(sqlstate.UNDEFINED_DATABASE, f"database {dd.name} does not exist")
        tables = _q(
            engine, "SELECT count(*) FROM _atlas_meta_tables WHERE database = ?", (dd.name,)
        ).rows[0][0]
        if tables and not dd.cascade:
            return _fail(
                sqlstate.DEPENDENT_OBJECTS,
                f"database {dd.name} has {tables} table(s): DROP DATABASE {dd.name} CASCADE"
                " drops them too",
            )
        _drop_tables(engine, dd.name, None)
        _q(engine, "DELETE FROM _atlas_meta_databases WHERE name = ?", (dd.name,))
        _bump(engine)
        return StatementResult(rows_affected=1)
    if kind == "alter_database":
        return _alter_database(engine, op.alter_database)
    if kind == "convert_table":
        return _convert_table(engine, op.convert_table)
    if kind == "set_locality":
        sl = op.set_locality
        db = db_name(sl.database)
        if not _table_exists(engine, db, sl.table):
            return _fail(sqlstate.UNDEFINED_TABLE, f"no such table: {sl.table}")
        _q(
            engine,
            "UPDATE _atlas_meta_tables SET locality = ? WHERE database = ? AND name = ?",
            (sl.locality, db, sl.table),
        )
        _bump(engine)
        return StatementResult(rows_affected=1)
    raise ValueError(f"unknown meta operation {kind!r}")


def _alter_database(engine: Engine, ad: pb.AlterDatabase) -> StatementResult:
    rows = _q(
        engine,
        "SELECT primary_region, regions, survival FROM _atlas_meta_databases WHERE name = ?",
        (ad.name,),
    ).rows
    if not rows:
        return _fail(sqlstate.UNDEFINED_DATABASE, f"database {ad.name} does not exist")
    primary, regions_csv, survival = str(rows[0][0]), str(rows[0][1]), str(rows[0][2])
    regions = [r for r in regions_csv.split(",") if r]
    if ad.primary_region:
        primary = ad.primary_region
        regions = [primary] + [r for r in regions if r != primary]
    if ad.add_region:
        if not primary:
            return _fail(
                sqlstate.INVALID_PARAMETER,
                f"database {ad.name} has no primary region: set one before adding regions",
            )
        if ad.add_region in regions:
            return _fail(
                sqlstate.DUPLICATE_OBJECT, f"region {ad.add_region} is already in {ad.name}"
            )
        regions.append(ad.add_region)
    if ad.drop_region:
        if ad.drop_region not in regions:
            return _fail(sqlstate.UNDEFINED_OBJECT, f"region {ad.drop_region} is not in {ad.name}")
        if ad.drop_region == primary and len(regions) > 1:
            return _fail(
                sqlstate.INVALID_PARAMETER,
                f"{ad.drop_region} is the primary region: set another primary region first",
            )
        homed = _q(
            engine,
            "SELECT name FROM _atlas_meta_tables WHERE database = ? AND locality = ?",
            (ad.name, f"table:{ad.drop_region}"),
        ).rows
        if homed:
            return _fail(
                sqlstate.DEPENDENT_OBJECTS,
                f"table {homed[0][0]} is homed in {ad.drop_region}: move it first",
            )
        regions.remove(ad.drop_region)
        if ad.drop_region == primary:
            primary = ""
    if ad.survival:
        if ad.survival == "region" and len(regions) < 3:
            return _fail(
                sqlstate.INVALID_PARAMETER,
                f"SURVIVE REGION FAILURE needs at least 3 regions; {ad.name} has {len(regions)}",
            )
        survival = ad.survival
    if survival == "region" and len(regions) < 3:
        return _fail(
            sqlstate.INVALID_PARAMETER,
            f"database {ad.name} survives region failure: it needs at least 3 regions",
        )
    _q(
        engine,
        "UPDATE _atlas_meta_databases SET primary_region = ?, regions = ?, survival = ?"
        " WHERE name = ?",
        (primary, ",".join(regions), survival, ad.name),
    )
    _bump(engine)
    return StatementResult(rows_affected=1)


def _convert_table(engine: Engine, ct: pb.ConvertTable) -> StatementResult:
    """The catalog side of a conversion to or from REGIONAL BY ROW (see pb.ConvertTable)."""
    db = db_name(ct.database)
    if not _table_exists(engine, db, ct.table):
        return _fail(sqlstate.UNDEFINED_TABLE, f"no such table: {ct.table}")
    where = (db, ct.table)
    if ct.phase == "begin":
        _q(
            engine,
            "UPDATE _atlas_meta_tables SET converting = ?, schema_version = ?"
            " WHERE database = ? AND name = ?",
            (ct.locality, ct.schema_version, *where),
        )
    elif ct.phase == "abort":
        _q(
            engine,
            "UPDATE _atlas_meta_tables SET converting = '',"
            " schema_version = max(schema_version, ?) WHERE database = ? AND name = ?",
            (ct.schema_version, *where),
        )
    elif ct.phase == "swap":
        if not _table_exists(engine, db, ct.shadow):
            return _fail(sqlstate.UNDEFINED_TABLE, f"no such table: {ct.shadow}")
        converting = _q(
            engine,
            "SELECT converting FROM _atlas_meta_tables WHERE database = ? AND name = ?",
            where,
        ).rows[0][0]
        if not converting:
            return _fail(
                sqlstate.SERIALIZATION_FAILURE,
                f"table {ct.table} is not being converted (the conversion was aborted)",
            )
        _drop_tables(engine, db, ct.table)
        for table, column in (
            ("_atlas_meta_tables", "name"),
            ("_atlas_meta_indexes", "table_name"),
            ("_atlas_meta_ranges", "table_name"),
        ):
            _q(
                engine,
                f"UPDATE {table} SET {column} = ? WHERE database = ? AND {column} = ?",
                (ct.table, db, ct.shadow),
            )
        _q(
            engine,
            "UPDATE _atlas_meta_tables SET converting = '', schema_version = ?, create_sql = ?"
            " WHERE database = ? AND name = ?",
            (ct.schema_version, ct.create_sql, *where),
        )
    else:
        return _fail(sqlstate.INVALID_PARAMETER, f"unknown conversion phase {ct.phase!r}")
    _bump(engine)
    return StatementResult(rows_affected=1)


def _drop_tables(engine: Engine, database: str, name: str | None) -> None:
    """Forget one table (or every table of a database), its indexes and its ranges."""
    where, params = "database = ?", [database]
    if name is not None:
        where, params = "database = ? AND name = ?", [database, name]
    idx_where = where.replace("name", "table_name")
    _q(engine, f"DELETE FROM _atlas_meta_tables WHERE {where}", tuple(params))
    _q(engine, f"DELETE FROM _atlas_meta_indexes WHERE {idx_where}", tuple(params))
    _q(engine, f"DELETE FROM _atlas_meta_ranges WHERE {idx_where}", tuple(params))


def catalog_version(engine: Engine) -> int:
    """The version of the catalog as of the engine's applied state (0: none yet)."""
    if not engine.query("SELECT 1 FROM sqlite_schema WHERE name = '_atlas_meta_version'").rows:
        return 0
    return int(engine.query("SELECT version FROM _atlas_meta_version").rows[0][0])


def read_catalog(engine: Engine) -> pb.Catalog:
    """The whole catalog as of the engine's applied state."""
    cat = pb.Catalog()
    if not engine.query("SELECT 1 FROM sqlite_schema WHERE name = '_atlas_meta_version'").rows:
        return cat
    version, max_id = engine.query("SELECT version, max_range_id FROM _atlas_meta_version").rows[0]
    cat.version = int(version)
    cat.max_range_id = int(max_id)
    for node_id, address, locality in engine.query(
        "SELECT node_id, address, locality FROM _atlas_meta_nodes ORDER BY node_id"
    ).rows:
        loc = pb.Locality()
        loc.ParseFromString(bytes(locality))
        cat.nodes.add(node_id=int(node_id), address=str(address), locality=loc)
    for name, primary, regions, survival in engine.query(
        "SELECT name, primary_region, regions, survival FROM _atlas_meta_databases ORDER BY name"
    ).rows:
        cat.databases.add(
            name=str(name),
            primary_region=str(primary),
            regions=[r for r in str(regions).split(",") if r],
            survival=str(survival),
        )
    indexes: dict[tuple[str, str], list[str]] = {}
    for database, table_name, index_sql in engine.query(
        "SELECT database, table_name, index_sql FROM _atlas_meta_indexes ORDER BY name"
    ).rows:
        key = (str(database).lower(), str(table_name).lower())
        indexes.setdefault(key, []).append(str(index_sql))
    columns = {str(r[1]) for r in engine.query("PRAGMA table_info(_atlas_meta_tables)").rows}
    converting_column = "converting" if "converting" in columns else "''"
    for table_id, database, name, create_sql, schema_version, locality, converting in engine.query(
        "SELECT table_id, database, name, create_sql, schema_version, locality,"
        f" {converting_column} FROM _atlas_meta_tables ORDER BY table_id"
    ).rows:
        cat.tables.add(
            locality=str(locality),
            converting=str(converting),
            table_id=int(table_id),
            database=str(database),
            name=str(name),
            create_sql=str(create_sql),
            index_sql=indexes.get((str(database).lower(), str(name).lower()), []),
            schema_version=int(schema_version),
        )
    for (
        range_id,
        database,
        table_name,
        start_key,
        end_key,
        replicas,
        generation,
        non_voters,
    ) in engine.query(
        "SELECT range_id, database, table_name, start_key, end_key, replicas, generation,"
        " non_voters FROM _atlas_meta_ranges ORDER BY range_id"
    ).rows:
        cat.ranges.add(
            range_id=int(range_id),
            database=str(database),
            table=str(table_name),
            start_key=bytes(start_key),
            end_key=bytes(end_key),
            replicas=[int(r) for r in str(replicas).split(",") if r],
            generation=int(generation),
            non_voters=[int(r) for r in str(non_voters).split(",") if r],
        )
    return cat
