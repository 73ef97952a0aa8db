"""A Plan as SQL: one query per random term (its per-level sums) and one per pair of terms (their
level-pair sums), plus the small queries a plan is learned from. DuckDB and Spark SQL differ only in
how names and strings are quoted (Dialect).

Every query reads the view `lmm_data` through the same filter (complete rows) and the same model
columns: z<k>_<a> for term k's Z columns, s<j> for the [X y] columns minus their pilot values.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmmcli.aggregate.plan import ONE, Plan

VIEW = "lmm_data"


@dataclass(frozen=True)
class Dialect:
    name: str
    ident_quote: str           # " for DuckDB, ` for Spark
    backslash_escapes: bool    # Spark string literals treat \ as an escape

    def ident(self, name: str) -> str:
        q = self.ident_quote
        return q + name.replace(q, q + q) + q

    def literal(self, v) -> str:
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, (int, float)):
            return repr(v)
        s = str(v)
        if self.backslash_escapes:
            s = s.replace("\\", "\\\\")
        return "'" + s.replace("'", "''" if not self.backslash_escapes else "\\'") + "'"


DUCKDB = Dialect("duckdb", '"', False)
SPARK = Dialect("spark", "`", True)


def render(e, d: Dialect) -> str:
    """SQL text of a plan expression, in double precision."""
    tag = e[0]
    if tag == "col":
        return f"CAST({d.ident(e[1])} AS DOUBLE)"
    if tag == "num":
        return f"CAST({e[1]!r} AS DOUBLE)"
    if tag == "neg":
        return f"(-{render(e[1], d)})"
    if tag == "bin":
        a, b = render(e[2], d), render(e[3], d)
        return f"power({a}, {b})" if e[1] == "^" else f"({a} {e[1]} {b})"
    if tag == "fn":
        return f"{e[1]}({render(e[2], d)})"
    if tag == "is":
        return f"(CASE WHEN {d.ident(e[1])} = {d.literal(e[2])} THEN 1.0 ELSE 0.0 END)"
    if tag == "mul":
        return f"({render(e[1], d)} * {render(e[2], d)})"
    raise ValueError(f"unknown plan expression {e!r}")


def complete(plan: Plan, d: Dialect) -> str:
    """The WHERE condition of complete rows (R's na.omit over the model's columns)."""
    return complete_where(plan.used, plan.floats, d)


def complete_where(used, floats, d: Dialect) -> str:
    """No missing value (NULL, or NaN in a floating-point column) in any of the used columns."""
    conds = [f"{d.ident(c)} IS NOT NULL" for c in used]
    conds += [f"NOT isnan({d.ident(c)})" for c in floats]
    return " AND ".join(conds) or "TRUE"


def key_alias(plan: Plan) -> dict[str, str]:
    """Every grouping column -> its alias k<i> in the model-column select."""
    out: dict[str, str] = {}
    for t in plan.terms:
        for c in t.keys:
            out.setdefault(c, f"k{len(out)}")
    return out


def model_select(plan: Plan, d: Dialect) -> str:
    """SELECT of the grouping keys, Z columns and shifted [X y] columns of the complete rows."""
    keys = key_alias(plan)
    cols = [f"{d.ident(c)} AS {a}" for c, a in keys.items()]
    for k, t in enumerate(plan.terms):
        cols += [f"{render(e, d)} AS z{k}_{a}" for a, e in enumerate(t.exprs) if e != ONE]
    for j, e in enumerate(plan.xy):
        if e == ONE:
            continue      # the intercept: a product with it is the other factor alone
        shift = float(plan.pilot[j]) if len(plan.pilot) else 0.0
        s = render(e, d) if shift == 0.0 else f"({render(e, d)} - {shift!r})"
        cols.append(f"{s} AS s{j}")
    return f"SELECT {', '.join(cols)} FROM {VIEW} WHERE {complete(plan, d)}"


def _z(plan: Plan, k: int, a: int) -> str | None:
    """Term k's Z column a in the model select, or None for a column of ones."""
    return None if plan.terms[k].exprs[a] == ONE else f"z{k}_{a}"


def _s(plan: Plan, j: int) -> str | None:
    """[X y] column j in the model select, or None for the intercept (a column of ones)."""
    return None if plan.xy[j] == ONE else f"s{j}"


def _sum(*factors) -> str:
    """SUM of a product of model columns (None factors are ones; no factors: a count)."""
    fs = [f for f in factors if f is not None]
    return "CAST(COUNT(*) AS DOUBLE)" if not fs else f"SUM({' * '.join(fs)})"


def term_aggregates(plan: Plan, k: int) -> list[tuple[str, str]]:
    """(alias, SQL) of term k's per-level sums: count, Z'Z, sum Z, Z's."""
    p, m = len(plan.terms[k].exprs), plan.m
    out = [("n", "COUNT(*)")]
    out += [(f"zz_{a}_{b}", _sum(_z(plan, k, a), _z(plan, k, b))) for a in range(p) for b in range(a + 1)]
    out += [(f"z_{a}", _sum(_z(plan, k, a))) for a in range(p)]
    out += [(f"zs_{a}_{j}", _sum(_z(plan, k, a), _s(plan, j))) for a in range(p) for j in range(m)]
    return out


def global_aggregates(plan: Plan) -> list[tuple[str, str]]:
    """(alias, SQL) of the [X y] cross-products, sums, minima and maxima over all complete rows."""
    m = plan.m
    out = [("n", "COUNT(*)")]
    out += [(f"ss_{i}_{j}", _sum(_s(plan, i), _s(plan, j))) for i in range(m) for j in range(i + 1)]
    out += [(f"s_{j}", _sum(_s(plan, j))) for j in range(m)]
    ext = [(_s(plan, j) or "CAST(1.0 AS DOUBLE)") for j in range(m)]
    out += [(f"mn_{j}", f"MIN({e})") for j, e in enumerate(ext)] + [(f"mx_{j}", f"MAX({e})") for j, e in enumerate(ext)]
    return out


def pair_aggregates(plan: Plan, k: int, l: int) -> list[tuple[str, str]]:
    """(alias, SQL) of the sums of Z_k column a times Z_l column b within each pair of levels."""
    pk, pl = len(plan.terms[k].exprs), len(plan.terms[l].exprs)
    return [(f"c_{a}_{b}", _sum(_z(plan, k, a), _z(plan, l, b))) for a in range(pk) for b in range(pl)]


def group_keys(plan: Plan, terms) -> list[str]:
    """Aliases of the distinct grouping columns of these terms."""
    alias = key_alias(plan)
    out: list[str] = []
    for k in terms:
        out += [alias[c] for c in plan.terms[k].keys if alias[c] not in out]
    return out


@dataclass(frozen=True)
class Query:
    """A GROUP BY over the model select; each distinct aggregate is computed once (same alias map)."""

    sql: str
    aliases: dict            # alias -> the alias of the column that holds its value

    def expand(self, res: dict) -> dict:
        return {**res, **{a: res[b] for a, b in self.aliases.items()}}


def grouped(plan: Plan, d: Dialect, keys: list[str], aggs: list[tuple[str, str]]) -> Query:
    """SELECT keys, aggregates FROM the model select GROUP BY keys (no GROUP BY for no keys)."""
    first: dict[str, str] = {}
    aliases = {}
    for name, sql in aggs:
        aliases[name] = first.setdefault(sql, name)
    sel = ", ".join(keys + [f"{sql} AS {name}" for sql, name in first.items()])
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return Query(f"SELECT {sel} FROM ({model_select(plan, d)}) AS m{group}", aliases)


def term_query(plan: Plan, d: Dialect, k: int) -> Query:
    return grouped(plan, d, group_keys(plan, [k]), term_aggregates(plan, k))


def pair_query(plan: Plan, d: Dialect, k: int, l: int) -> Query:
    return grouped(plan, d, group_keys(plan, [k, l]), pair_aggregates(plan, k, l))


def global_query(plan: Plan, d: Dialect) -> Query:
    return grouped(plan, d, [], global_aggregates(plan))


# -- the small queries a plan is learned from ---------------------------------------------------------
def distinct_query(where: str, d: Dialect, col: str) -> str:
    return f"SELECT DISTINCT {d.ident(col)} AS v FROM {VIEW} WHERE {where}"


def moments_query(where: str, d: Dialect, e) -> str:
    """Mean and sample sd of an expression over the complete rows (scale()'s centre and scale)."""
    x = render(e, d)
    return f"SELECT COUNT(*) AS n, AVG({x}) AS mean, STDDEV_SAMP({x}) AS sd FROM {VIEW} WHERE {where}"


def pilot_query(plan: Plan, d: Dialect, limit: int) -> str:
    """Means of the [X y] columns over the first `limit` complete rows (the pilot shift)."""
    cols = ", ".join(f"{render(e, d)} AS s{j}" for j, e in enumerate(plan.xy))
    avgs = ", ".join(f"AVG(s{j}) AS s{j}" for j in range(plan.m))
    return f"SELECT {avgs} FROM (SELECT {cols} FROM {VIEW} WHERE {complete(plan, d)} LIMIT {limit}) AS f"


def count_query() -> str:
    return f"SELECT COUNT(*) AS n FROM {VIEW}"
