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
        raise NotImplementedError("LOCALITY REGIONAL BY ROW is not supported yet")
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
    if locality.startswith("table:"):
        return f"REGIONAL BY TABLE IN {locality[len('table:') :]}"
    return "REGIONAL BY TABLE IN PRIMARY REGION"


__all__ = [
    "ALTER_DATABASE_RE",
    "SET_LOCALITY_RE",
    "SHOW_GEO_RE",
    "GeoSyntaxError",
    "describe_locality",
    "parse_database_options",
    "parse_locality",
    "region_name",
    "split_locality",
]
