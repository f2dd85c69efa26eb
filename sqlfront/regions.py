"""The geo statements' grammar (SQLite has none of it): database regions, survival goals,
table localities, SHOW NODES / REGIONS. Pure parsing; the gateway acts on the results.

>>> parse_database_options("PRIMARY REGION 'us-east' REGIONS 'us-west', 'eu-west'")
('us-east', ['us-west', 'eu-west'], '')
>>> parse_database_options("PRIMARY REGION us_east SURVIVE REGION FAILURE")
('us_east', [], 'region')
>>> split_locality("CREATE TABLE t(a) LOCALITY REGIONAL BY TABLE IN 'eu-west';")
('CREATE TABLE t(a)', 'table:eu-west')
>>> split_locality("CREATE TABLE t(a) LOCALITY GLOBAL")
('CREATE TABLE t(a)', 'global')
>>> parse_locality("REGIONAL BY TABLE IN PRIMARY REGION")
''
>>> describe_locality("table:us-west"), describe_locality(""), describe_locality("global")
('REGIONAL BY TABLE IN us-west', 'REGIONAL BY TABLE IN PRIMARY REGION', 'GLOBAL')
"""

from __future__ import annotations

import re
from typing import Any

from storage import sqlstate

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REGION = r"(?:'(?:[^']|'')+'|\"[^\"]+\"|[A-Za-z_][A-Za-z0-9_-]*)"


class GeoSyntaxError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = sqlstate.SYNTAX_ERROR
        self.message = message


def region_name(token: str) -> str:
    """A region literal without its quotes: ``'us-east'``, ``"us-east"`` or ``us_east``."""
    token = token.strip()
    if token.startswith("'") and token.endswith("'"):
        return token[1:-1].replace("''", "'")
    if token.startswith('"') and token.endswith('"'):
        return token[1:-1]
    return token


def parse_database_options(text: str) -> tuple[str, list[str], str]:
    """``[PRIMARY REGION r] [REGIONS r1, r2 ...] [SURVIVE {ZONE|REGION} FAILURE]``."""
    rest = text.strip().rstrip(";").strip()
    primary, regions, survival = "", [], ""
    m = re.match(rf"PRIMARY\s+REGION\s*=?\s*({_REGION})\s*", rest, re.I)
    if m:
        primary, rest = region_name(m.group(1)), rest[m.end() :]
    m = re.match(rf"REGIONS\s*=?\s*({_REGION}(?:\s*,\s*{_REGION})*)\s*", rest, re.I)
    if m:
        regions = [region_name(r) for r in re.findall(_REGION, m.group(1))]
        rest = rest[m.end() :]
    m = re.match(r"SURVIVE\s+(ZONE|REGION)\s+FAILURE\s*", rest, re.I)
    if m:
        survival, rest = m.group(1).lower(), rest[m.end() :]
    if rest:
        raise GeoSyntaxError(
            f"unexpected {rest[:30]!r}: CREATE DATABASE d [PRIMARY REGION 'r'] "
            "[REGIONS 'r2', ...] [SURVIVE {ZONE|REGION} FAILURE]"
        )
    if regions and not primary:
        raise GeoSyntaxError("REGIONS needs a PRIMARY REGION")
    if survival and not primary:
        raise GeoSyntaxError("a survival goal needs a PRIMARY REGION")
    return primary, [r for r in regions if r != primary], survival


ALTER_DATABASE_RE = re.compile(
    rf"^\s*ALTER\s+DATABASE\s+(?P<db>{_NAME})\s+(?:"
    rf"ADD\s+REGION\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<add>{_REGION})"
    rf"|DROP\s+REGION\s+(?:IF\s+EXISTS\s+)?(?P<drop>{_REGION})"
    rf"|(?:SET\s+)?PRIMARY\s+REGION\s*=?\s*(?P<primary>{_REGION})"
    r"|SURVIVE\s+(?P<survive>ZONE|REGION)\s+FAILURE"
    r")\s*;?\s*$",
    re.I,
)

SHOW_GEO_RE = re.compile(
    rf"^\s*SHOW\s+(?:(?P<nodes>NODES)"
    rf"|(?P<regions>REGIONS)(?:\s+FROM\s+(?:(?P<cluster>CLUSTER)|DATABASE(?:\s+(?P<rdb>{_NAME}))?))?"
    rf"|SURVIVAL\s+GOAL\s+FROM\s+DATABASE(?:\s+(?P<sdb>{_NAME}))?)\s*;?\s*$",
    re.I,
)

_LOCALITY = (
    rf"REGIONAL\s+BY\s+TABLE(?:\s+IN\s+(?:PRIMARY\s+REGION|(?P<region>{_REGION})))?"
    r"|(?P<global>GLOBAL)"
    rf"|(?P<row>REGIONAL\s+BY\s+ROW(?:\s+AS\s+{_NAME})?)"
)
_LOCALITY_RE = re.compile(rf"^\s*(?:{_LOCALITY})\s*;?\s*$", re.I)
_TRAILING_LOCALITY_RE = re.compile(rf"\s+LOCALITY\s+(?:{_LOCALITY})\s*;?\s*$", re.I)
SET_LOCALITY_RE = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?P<table>(?:{_NAME}\.)?{_NAME})\s+SET\s+LOCALITY\s+(?P<loc>.+?)\s*;?\s*$",
    re.I | re.S,
)


def parse_locality(text: str) -> str:
    """A LOCALITY clause's value as stored in the catalog (see TableDescriptor.locality)."""
    m = _LOCALITY_RE.match(text)
    if m is None:
        raise GeoSyntaxError(
            f"unknown locality {text.strip()!r}: REGIONAL BY TABLE [IN 'r' | IN PRIMARY REGION],"
            " GLOBAL or REGIONAL BY ROW"
        )
    if m.group("row"):
        named = re.search(rf"\bAS\s+({_NAME})\s*$", m.group("row"), re.I)
        return "row:" + (named.group(1) if named else REGION_COLUMN)
    if m.group("global"):
        return "global"
    return f"table:{region_name(m.group('region'))}" if m.group("region") else ""


def split_locality(create_sql: str) -> tuple[str, str | None]:
    """(CREATE TABLE text without its LOCALITY clause, the locality or None if absent)."""
    m = _TRAILING_LOCALITY_RE.search(create_sql)
    if m is None:
        return create_sql, None
    clause = m.group(0).strip().rstrip(";").strip()[len("LOCALITY") :]
    return create_sql[: m.start()].rstrip(), parse_locality(clause)


def describe_locality(locality: str) -> str:
    if locality == "global":
        return "GLOBAL"
    if locality.startswith("row:"):
        column = row_region_column(locality)
        return (
            "REGIONAL BY ROW"
            + ("" if column == REGION_COLUMN else f" AS {column}")
            + (" (key unique per region)" if unique_per_region(locality) else "")
        )
    if locality.startswith("table:"):
        return f"REGIONAL BY TABLE IN {locality[len('table:') :]}"
    return "REGIONAL BY TABLE IN PRIMARY REGION"


def row_region_column(locality: str) -> str:
    """The region column of a REGIONAL BY ROW table ('' for other localities)."""
    if not locality.startswith("row:"):
        return ""
    return locality[len("row:") :].split(":")[0]


def unique_per_region(locality: str) -> bool:
    """A REGIONAL BY ROW table whose declared key starts with its region column: its key is
    unique per region (no cross-region check on INSERT)."""
    return locality.startswith("row:") and locality.endswith(":per-region")


_WITHOUT_ROWID_RE = re.compile(r"\)\s*(WITHOUT\s+ROWID)\s*$", re.I)


def split_without_rowid(create_sql: str) -> tuple[str, bool]:
    """(a CREATE TABLE text without its trailing ``;`` and ``WITHOUT ROWID``, whether it had
    that clause): sqlglot does not parse it.

    >>> split_without_rowid("CREATE TABLE t(a PRIMARY KEY) WITHOUT ROWID;")
    ('CREATE TABLE t(a PRIMARY KEY)', True)
    """
    text = create_sql.strip().rstrip(";").strip()
    m = _WITHOUT_ROWID_RE.search(text)
    return (text[: m.start() + 1], True) if m else (text, False)


def _create_schema(create_sql: str, needs: str) -> tuple[Any, Any, bool]:
    """The parsed CREATE TABLE, its column list (exp.Schema) and whether it was WITHOUT
    ROWID; ``needs`` says what was expected if it is not a CREATE TABLE t (columns ...)."""
    from sqlglot import exp

    from .dialect import parse

    text, without_rowid = split_without_rowid(create_sql)
    tree = parse(text)[0]
    schema = tree.this if isinstance(tree, exp.Create) else None
    if not isinstance(schema, exp.Schema) or not isinstance(schema.this, exp.Table):
        raise GeoSyntaxError(needs)
    return tree, schema, without_rowid


def regional_by_row_table(create_sql: str, column: str, primary_region: str) -> tuple[str, bool]:
    """The CREATE TABLE a REGIONAL BY ROW table really gets: a region column (added as
    ``column TEXT NOT NULL DEFAULT 'primary'`` unless the table has it), and a primary key
    that starts with it, so each region's rows are a contiguous key span (its own ranges,
    led from that region). The other key columns stay unique across regions: the gateway
    checks the other regions on INSERT (the cross-region cost EXPLAIN shows), unless the
    declared key already contains the region column: then it is unique per region (the
    second value returned is True).

    >>> sql, _ = regional_by_row_table("CREATE TABLE u(id INT PRIMARY KEY)", "r", "us-east")
    >>> sql.endswith("DEFAULT 'us-east', PRIMARY KEY (r, id)) WITHOUT ROWID")
    True
    """
    from sqlglot import exp

    from .dialect import AtlasDialect

    tree, schema, _ = _create_schema(
        create_sql, "REGIONAL BY ROW needs CREATE TABLE t (columns ...)"
    )
    key: list[str] = []
    has_region = False
    for item in list(schema.expressions):
        if isinstance(item, exp.PrimaryKey):
            key = [c.name for c in item.expressions]
            item.pop()
        elif isinstance(item, exp.ColumnDef):
            if item.name.lower() == column.lower():
                has_region = True
            for constraint in list(item.args.get("constraints") or []):
                kind = constraint.args.get("kind")
                if isinstance(kind, exp.PrimaryKeyColumnConstraint):
                    key = [item.name]
                    constraint.replace(exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()))
                elif isinstance(kind, exp.AutoIncrementColumnConstraint):
                    raise GeoSyntaxError("REGIONAL BY ROW tables cannot use AUTOINCREMENT")
    if not key:
        raise GeoSyntaxError("a REGIONAL BY ROW table needs a PRIMARY KEY")
    per_region = any(k.lower() == column.lower() for k in key)
    key = [k for k in key if k.lower() != column.lower()]
    if not has_region:
        schema.append(
            "expressions",
            exp.ColumnDef(
                this=exp.to_identifier(column),
                kind=exp.DataType.build("TEXT"),
                constraints=[
                    exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()),
                    exp.ColumnConstraint(
                        kind=exp.DefaultColumnConstraint(this=exp.Literal.string(primary_region))
                    ),
                ],
            ),
        )
    schema.append(
        "expressions",
        exp.PrimaryKey(expressions=[exp.to_identifier(c) for c in [column, *key]]),
    )
    # WITHOUT ROWID: the key is the row's identity (a rowid would be per range, and collide
    # when rows of several ranges meet at the gateway).
    return str(tree.sql(dialect=AtlasDialect)) + " WITHOUT ROWID", per_region


REGION_COLUMN = "crdb_region"

__all__ = [
    "ALTER_DATABASE_RE",
    "REGION_COLUMN",
    "SET_LOCALITY_RE",
    "SHOW_GEO_RE",
    "GeoSyntaxError",
    "describe_locality",
    "locality_clause",
    "parse_database_options",
    "parse_locality",
    "region_name",
    "regional_by_row_table",
    "reshaped_create",
    "row_region_column",
    "split_locality",
    "split_without_rowid",
    "unique_per_region",
]


def locality_clause(locality: str) -> str:
    """The LOCALITY clause (without the keyword) that ``parse_locality`` reads back.

    >>> [locality_clause(x) for x in ("", "table:us-west", "global", "row:r:per-region")][1:]
    ["REGIONAL BY TABLE IN 'us-west'", 'GLOBAL', 'REGIONAL BY ROW AS r']
    """
    if locality == "global":
        return "GLOBAL"
    if locality.startswith("row:"):
        return f"REGIONAL BY ROW AS {row_region_column(locality)}"
    if locality.startswith("table:"):
        region = locality[len("table:") :].replace("'", "''")
        return f"REGIONAL BY TABLE IN '{region}'"
    return "REGIONAL BY TABLE IN PRIMARY REGION"


def reshaped_create(create_sql: str, name: str, *, drop_key_column: str = "") -> str:
    """``create_sql`` (one CREATE TABLE) for a table called ``name``; with ``drop_key_column``,
    that column leaves the table's PRIMARY KEY (it stays a column): a REGIONAL BY ROW table
    turned back into a plain one.

    >>> reshaped_create('CREATE TABLE u(id INT NOT NULL, r TEXT, PRIMARY KEY (r, id))'
    ...                 ' WITHOUT ROWID', 'v', drop_key_column='r')
    'CREATE TABLE "v" (id INTEGER NOT NULL PRIMARY KEY, r TEXT) WITHOUT ROWID'
    """
    from sqlglot import exp

    from .dialect import AtlasDialect

    tree, schema, without_rowid = _create_schema(
        create_sql, "expected CREATE TABLE t (columns ...)"
    )
    schema.this.replace(exp.Table(this=exp.to_identifier(name, quoted=True)))
    if drop_key_column:
        for item in schema.expressions:
            if isinstance(item, exp.PrimaryKey):
                kept = [c for c in item.expressions if c.name.lower() != drop_key_column.lower()]
                item.set("expressions", kept)
    out = str(tree.sql(dialect=AtlasDialect))
    return out + (" WITHOUT ROWID" if without_rowid else "")
