"""Partial aggregation: split one aggregate SELECT over a table into a per-range query and a
final query the gateway runs over the ranges' partial rows.

    SELECT g, count(*), avg(y) FROM t WHERE x < 5 GROUP BY g HAVING count(*) > 2

becomes, on every range,

    SELECT g AS _g0, count(*) AS _p0, total(y) AS _p1, count(y) AS _p2 FROM t WHERE x < 5
    GROUP BY g

and at the gateway, over the gathered partial rows (table ``__atlas_partial``),

    SELECT _g0, sum(_p0), CASE WHEN sum(_p2) > 0 THEN total(_p1) / sum(_p2) END
    FROM __atlas_partial GROUP BY _g0 HAVING sum(_p0) > 2

Only COUNT (not DISTINCT), SUM, TOTAL, AVG, MIN and MAX are split; anything else (DISTINCT
aggregates, GROUP_CONCAT, window functions, bare columns, subqueries, positional parameters)
makes ``plan_aggregate`` return None and the gateway gathers rows instead. Counts, MIN and MAX
merge exactly; sums of integers merge exactly (an overflow is reported as SQLite would);
sums and averages of REAL values are added in another order than a single scan would, so they
can differ in the last bits, as SQLite's own results do between query plans.

>>> p = plan_aggregate(_one("SELECT g, count(*), avg(y) FROM t WHERE x < 5 GROUP BY g"))
>>> p.partial_sql
'SELECT g AS _g0, COUNT(*) AS _p0, TOTAL(y) AS _p1, COUNT(y) AS _p2 FROM t WHERE x < 5 GROUP BY 1'
>>> p.final_sql.replace("CASE WHEN SUM(_p2) > 0 THEN TOTAL(_p1) / SUM(_p2) END", "AVG")
'SELECT _g0, SUM(_p0), AVG FROM __atlas_partial GROUP BY _g0'
>>> plan_aggregate(_one("SELECT count(DISTINCT x) FROM t")) is None
True
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from .dialect import parse
from .planner import is_positional
from .rewrite import to_sql

PARTIAL_TABLE = "__atlas_partial"


@dataclasses.dataclass(frozen=True)
class AggPlan:
    partial_sql: str  # runs on each range (the original FROM and WHERE)
    final_sql: str  # runs at the gateway over PARTIAL_TABLE
    partial_columns: tuple[str, ...]


def _one(sql: str) -> exp.Select:
    tree = parse(sql)[0]
    assert isinstance(tree, exp.Select)
    return tree


def _is_total(node: exp.Expr) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.name).lower() == "total"


def _aggregates(node: exp.Expr) -> list[exp.Expr]:
    return [n for n in node.walk() if isinstance(n, exp.AggFunc) or _is_total(n)]


def _partials(agg: exp.Expr) -> list[str] | None:
    """Per-range expressions an aggregate needs (None: not splittable)."""
    if isinstance(agg, exp.Count):
        arg = agg.this
        if isinstance(arg, exp.Distinct) or agg.args.get("expressions"):
            return None
        return ["COUNT(*)" if arg is None or isinstance(arg, exp.Star) else f"COUNT({to_sql(arg)})"]
    args = agg.expressions if _is_total(agg) else [agg.this]
    if len(args) != 1 or args[0] is None or isinstance(args[0], exp.Distinct):
        return None
    if not _is_total(agg) and agg.args.get("expressions"):
        return None
    arg = to_sql(args[0])
    if isinstance(agg, exp.Sum):
        return [f"SUM({arg})"]
    if _is_total(agg):
        return [f"TOTAL({arg})"]
    if isinstance(agg, exp.Avg):
        return [f"TOTAL({arg})", f"COUNT({arg})"]
    if isinstance(agg, exp.Min):
        return [f"MIN({arg})"]
    if isinstance(agg, exp.Max):
        return [f"MAX({arg})"]
    return None


def _merge(agg: exp.Expr, cols: list[str]) -> str:
    if isinstance(agg, exp.Count):
        return f"SUM({cols[0]})"
    if isinstance(agg, exp.Sum):
        return f"SUM({cols[0]})"
    if _is_total(agg):
        return f"TOTAL({cols[0]})"
    if isinstance(agg, exp.Avg):
        return f"CASE WHEN SUM({cols[1]}) > 0 THEN TOTAL({cols[0]}) / SUM({cols[1]}) END"
    if isinstance(agg, exp.Min):
        return f"MIN({cols[0]})"
    return f"MAX({cols[0]})"


def plan_aggregate(select: exp.Select) -> AggPlan | None:
    """The split of an aggregate ``select`` over one table, or None (see the module doc)."""
    if any(isinstance(n, (exp.Window, exp.Subquery)) for n in select.walk()):
        return None
    if any(not isinstance(s.parent, exp.Count) for s in select.find_all(exp.Star)):
        return None
    if any(is_positional(n) for n in select.walk()):
        return None
    aliases = {e.alias.lower() for e in select.expressions if isinstance(e, exp.Alias)}
    groups: list[exp.Expr] = []
    group = select.args.get("group")
    for g in group.expressions if group is not None else []:
        if isinstance(g, exp.Literal) and g.is_int:
            pos = int(g.this)
            if not 1 <= pos <= len(select.expressions):
                return None
            g = select.expressions[pos - 1]
            g = g.this if isinstance(g, exp.Alias) else g
        elif isinstance(g, exp.Column) and not g.table and g.name.lower() in aliases:
            return None  # alias or column? leave SQLite's resolution rules to SQLite
        if _aggregates(g):
            return None
        groups.append(g)
    parts = [e for e in (select.args.get("having"), select.args.get("order")) if e is not None]
    aggs: list[exp.Expr] = []
    for node in [*select.expressions, *parts]:
        aggs.extend(_aggregates(node))
    if not aggs and not groups:
        return None
    partial_cols: list[str] = [f"{to_sql(g)} AS _g{i}" for i, g in enumerate(groups)]
    names = [f"_g{i}" for i in range(len(groups))]
    merged: dict[str, str] = {}
    for agg in aggs:
        key = to_sql(agg)
        if key in merged:
            continue
        pieces = _partials(agg)
        if pieces is None or any(_aggregates(a) for a in agg.iter_expressions()):
            return None
        cols = []
        for piece in pieces:
            name = f"_p{sum(1 for n in names if n.startswith('_p'))}"
            partial_cols.append(f"{piece} AS {name}")
            names.append(name)
            cols.append(name)
        merged[key] = _merge(agg, cols)
    group_sql = {to_sql(g): f"_g{i}" for i, g in enumerate(groups)}

    def replace(node: exp.Expr) -> exp.Expr:
        text = to_sql(node) if not isinstance(node, (exp.Ordered, exp.Alias)) else ""
        if text in group_sql:
            return exp.column(group_sql[text])
        if text in merged:
            merged_expr: exp.Expr = parse(f"SELECT {merged[text]}")[0].expressions[0]
            return merged_expr
        return node

    final = select.copy()
    final.set("where", None)
    final.set("from_", exp.From(this=exp.to_table(PARTIAL_TABLE)))
    final.set("group", exp.Group(expressions=[exp.column(f"_g{i}") for i in range(len(groups))]))
    if not groups:
        final.set("group", None)
    final.set("expressions", [e.transform(replace) for e in final.expressions])
    for key in ("having", "order"):
        if final.args.get(key) is not None:
            final.set(key, final.args[key].transform(replace))
    for col in final.find_all(exp.Column):
        name = col.name.lower()
        if not (name in names or (name in aliases and col.find_ancestor(exp.Order))):
            return None  # a bare column, or something the split does not cover
    source = select.args.get("from_")
    if source is None:
        return None
    partial = f"SELECT {', '.join(partial_cols)} {to_sql(source)}"
    if select.args.get("where") is not None:
        partial += f" {to_sql(select.args['where'])}"
    if groups:
        # By position: the group expressions are the partial's first columns (a constant
        # group expression such as 0 would otherwise read as a column position).
        partial += f" GROUP BY {', '.join(str(i + 1) for i in range(len(groups)))}"
    return AggPlan(partial, to_sql(final), tuple(names))


__all__ = ["PARTIAL_TABLE", "AggPlan", "plan_aggregate"]
