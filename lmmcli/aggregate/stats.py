"""From a data source to CrossProducts through any SQL engine: learn the plan (factor levels, scale()'s
centre and scale, pilot shifts), run one GROUP BY per random term and per pair of terms, and assemble
the sums into the engine's sufficient statistics.

Numerics: every [X y] column is summed as s = c - pilot (the mean of the first batch of rows), so the
sums of squares do not lose digits to a large mean; the sums are then mapped back exactly in the
algebra (sum c_i c_j = S_ij + pilot_i T_j + pilot_j T_i + n pilot_i pilot_j with T = sum s) and in
double precision. Level order: groups come back in the engine's order; they are recoded in R's order
(design.levels.group_codes on the key values) before anything is indexed by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.aggregate import sql
from lmmcli.aggregate.crossprod import CrossProducts, TermInfo, term_blocks
from lmmcli.aggregate.plan import ONE, Plan, build_plan, expression, factor_names, inner_first, scale_calls
from lmmcli.design import checks
from lmmcli.design.design import ModelSpec, aliased_from_gram, check_columns
from lmmcli.design.levels import group_codes
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import Formula, Name
from lmmcli.io.frame import Frame

PILOT_ROWS = 65536


@dataclass
class Shifted:
    """The sums as the engine formed them, about the pilot values: S = s's, T = sum s, per level
    ZS = Z's and zsum = Z's column sums (first term, then the rest terms stacked as A2Xy's rows)."""

    pilot: np.ndarray
    S: np.ndarray
    T: np.ndarray
    ZS1: np.ndarray
    zsum1: np.ndarray
    A2S: np.ndarray | None = None
    zsum2: np.ndarray | None = None

    def columns(self, keep) -> "Shifted":
        """The same sums for a subset of the [X y] columns."""
        return Shifted(self.pilot[keep], self.S[np.ix_(keep, keep)], self.T[keep], self.ZS1[:, :, keep],
                       self.zsum1, None if self.A2S is None else self.A2S[:, keep], self.zsum2)


@dataclass
class Aggregated:
    """Sufficient statistics of a fit and what the result needs besides them."""

    cp: CrossProducts
    spec: ModelSpec
    response: str
    n_input: int
    shifted: Shifted
    intercept: int | None = None        # position of the (Intercept) column of X, if any
    warnings: list[str] = field(default_factory=list)
    plan: Plan | None = None
    term_keys: list = field(default_factory=list)   # per cp.terms: (plan term index, {key alias: values by code})


# -- learning the plan ------------------------------------------------------------------------
def _empty_frame(kinds: dict[str, str]) -> Frame:
    dtype = {"float": float, "int": np.int64, "bool": bool}
    return Frame({c: np.zeros(0, dtype=dtype.get(k, object)) for c, k in kinds.items()})


def check_schema(formula: Formula, kinds: dict[str, str], refs: dict, source: str) -> None:
    """The checks of design.build_design that need only column names and kinds."""
    check_columns(formula, _empty_frame(kinds), source)
    for col in refs:
        if col not in kinds:
            raise ModelSpecError(f"--ref names column '{col}', which is not in {source}")
    checks.check_formula_columns(formula)
    if formula.response is None:
        raise ModelSpecError("the formula has no response (left of '~')", text=formula.text, span=(0, 1))
    if isinstance(formula.response, Name) and kinds[formula.response.name] not in ("float", "int"):
        col, kind = formula.response.name, kinds[formula.response.name]
        what = "TRUE/FALSE values" if kind == "bool" else "text"
        raise DataError(f"the response '{col}' is not numeric: it holds {what}",
                        hint="lmm fits linear mixed models of a numeric response")


def learn_plan(runner, formula: Formula, factor_columns=(), refs=None, source: str = "the data",
               require=()) -> Plan:
    """The plan for this formula over the runner's data: a first look at levels, scale() and pilot means.
    require: further columns a complete row needs (build_plan)."""
    refs = dict(refs or {})
    kinds = runner.kinds()
    check_schema(formula, kinds, refs, source)
    used = tuple(sorted(set(formula.columns()) | set(require)))
    where = sql.complete_where(used, tuple(c for c in used if kinds[c] == "float"), runner.dialect)
    factors = {c: runner.run(sql.distinct_query(where, runner.dialect, c))["v"]
               for c in factor_names(formula, kinds, set(factor_columns))}
    scale_state: dict[str, tuple[float, float]] = {}
    calls = scale_calls(formula)
    for key in inner_first(calls):
        r = runner.run(sql.moments_query(where, runner.dialect, expression(calls[key], scale_state)))
        mean, sd = float(r["mean"][0]), r["sd"][0]
        sd = float(sd) if sd is not None and np.isfinite(sd) and int(r["n"][0]) > 1 else 1.0
        scale_state[key] = (mean, sd if sd > 0 else 1.0)
    plan = build_plan(formula, kinds, factors, scale_state, factor_columns, refs, require, category_orders(runner))
    checks.check_refs(refs, formula, plan.spec.variables)
    if not plan.terms:
        raise ModelSpecError("the aggregation engines fit mixed models; this formula has no random terms",
                             hint="use --engine memory for a linear model")
    r = runner.run(sql.pilot_query(plan, runner.dialect, PILOT_ROWS))
    pilot = np.array([float(r[f"s{j}"][0]) if r[f"s{j}"][0] is not None else 0.0 for j in range(plan.m)])
    pilot[[j for j, e in enumerate(plan.xy) if e == ONE]] = 0.0
    plan.pilot = np.where(np.isfinite(pilot), pilot, 0.0)
    return plan


def category_orders(runner) -> dict[str, tuple]:
    """The stored category orders of the runner's data, under R's column names."""
    from lmmcli.io.text import _r_names

    src = getattr(runner, "src", None)
    orders = src.category_orders() if src is not None else {}
    if not orders:
        return {}
    import pyarrow.parquet as pq

    names = pq.read_schema(src.files[0]).names
    return {r: orders[c] for c, r in zip(names, _r_names(names)) if c in orders}


# -- running it ------------------------------------------------------------------------------
def aggregate(runner, formula: Formula, factor_columns=(), refs=None, source: str = "the data",
              require=()) -> Aggregated:
    """Learn the plan, run its GROUP BYs and assemble the CrossProducts (require: see build_plan)."""
    plan = learn_plan(runner, formula, factor_columns, refs, source, require)
    d = runner.dialect
    n_input = int(runner.run(sql.count_query())["n"][0])
    totals = _run(runner, sql.global_query(plan, d), grouped=False)
    results = [_run(runner, sql.term_query(plan, d, k)) for k in range(len(plan.terms))]
    pairs = {(k, l): _run(runner, sql.pair_query(plan, d, k, l))
             for k in range(len(plan.terms)) for l in range(k + 1, len(plan.terms))}
    return assemble(plan, totals, results, pairs, n_input, source)


def _run(runner, q: sql.Query, grouped: bool = True) -> dict:
    return q.expand(runner.run(q.sql, grouped))


def _levels(plan: Plan, k: int, res: dict):
    """(codes of the result's rows in R's level order, level labels) of term k, from its key values."""
    alias = sql.key_alias(plan)
    keys = plan.terms[k].keys
    frame = Frame({c: np.asarray(res[alias[c]]) for c in keys}, orders=plan.orders)
    codes, labels = group_codes(frame, keys)
    return codes, labels


def _lookup(plan: Plan, k: int, res: dict, codes: np.ndarray, other: dict) -> np.ndarray:
    """Term k's level code of each row of another result (which holds term k's keys among its own)."""
    import pandas as pd

    alias = sql.key_alias(plan)
    cols = [alias[c] for c in plan.terms[k].keys]
    if len(cols) == 1:
        index, query = pd.Index(res[cols[0]]), pd.Index(other[cols[0]])
    else:
        index = pd.MultiIndex.from_arrays([res[c] for c in cols])
        query = pd.MultiIndex.from_arrays([other[c] for c in cols])
    pos = index.get_indexer(query)
    if (pos < 0).any():
        raise DataError("the aggregation engine returned inconsistent groups; the data changed while reading?")
    return codes[pos]


def _sym(res: dict, prefix: str, p: int, order: np.ndarray) -> np.ndarray:
    """(levels, p, p) symmetric stack from the lower-triangle sums prefix_a_b, rows in level order."""
    out = np.empty((len(order), p, p))
    for a in range(p):
        for b in range(a + 1):
            v = np.asarray(res[f"{prefix}_{a}_{b}"], dtype=float)[order]
            out[:, a, b] = out[:, b, a] = v
    return out


def _ztxy(res: dict, p: int, pilot: np.ndarray, order: np.ndarray):
    """(Z'[X y], Z's, Z's column sums) per level, (levels, p, m), (levels, p, m), (levels, p):
    Z'[X y] is the shifted sums plus pilot times each Z column's sum."""
    m = len(pilot)
    ZS = np.empty((len(order), p, m))
    zsum = np.empty((len(order), p))
    for a in range(p):
        zsum[:, a] = np.asarray(res[f"z_{a}"], dtype=float)[order]
        for j in range(m):
            ZS[:, a, j] = np.asarray(res[f"zs_{a}_{j}"], dtype=float)[order]
    return ZS + zsum[:, :, None] * pilot[None, None, :], ZS, zsum


def _globals(res: dict, m: int, pilot: np.ndarray):
    """(n, XyXy, col_sum, col_min, col_max) from the per-level partial sums of one term's result."""
    n = int(np.asarray(res["n"]).sum())
    S = np.empty((m, m))
    for i in range(m):
        for j in range(i + 1):
            S[i, j] = S[j, i] = float(np.asarray(res[f"ss_{i}_{j}"], dtype=float).sum())
    T = np.array([float(np.asarray(res[f"s_{j}"], dtype=float).sum()) for j in range(m)])
    XyXy = S + np.outer(pilot, T) + np.outer(T, pilot) + n * np.outer(pilot, pilot)
    col_min = np.array([float(np.min(res[f"mn_{j}"])) for j in range(m)]) + pilot
    col_max = np.array([float(np.max(res[f"mx_{j}"])) for j in range(m)]) + pilot
    return n, XyXy, T + n * pilot, col_min, col_max, S, T


@dataclass
class _Term:
    info: TermInfo
    index: int              # position in the formula
    codes: np.ndarray       # level code of each row of its result
    res: dict


def assemble(plan: Plan, totals: dict, results: list[dict], pairs: dict, n_input: int, source: str) -> Aggregated:
    """CrossProducts from the GROUP BY results (the global sums, term k's per-level sums, pairs'
    level-pair sums)."""
    m, pilot = plan.m, plan.pilot
    if len(results[0]["n"]) == 0 or int(totals["n"][0]) == 0:
        raise DataError("no rows are left after dropping rows with missing values in the model's columns")
    n, XyXy, col_sum, col_min, col_max, S, T = _globals(totals, m, pilot)
    _check_values(plan, XyXy, col_min, col_max)
    terms = []
    for k, (t, res) in enumerate(zip(plan.terms, results)):
        codes, labels = _levels(plan, k, res)
        terms.append(_Term(TermInfo(t.group, t.columns, labels, t.correlated), k, codes, res))
    terms.sort(key=lambda t: -len(t.info.levels))    # stable: largest grouping factor first, as lme4
    first, rest = terms[0], terms[1:]
    order1 = np.argsort(first.codes)
    p1 = len(first.info.columns)
    D1 = _sym(first.res, "zz", p1, order1)
    ZtXy1, ZS1, zsum1 = _ztxy(first.res, p1, pilot, order1)
    counts1 = np.asarray(first.res["n"], dtype=float)[order1]
    shifted = Shifted(pilot, S, T, ZS1, zsum1)
    A21 = A22 = A2Xy = None
    if rest:
        A21, A22, A2Xy, shifted.A2S, shifted.zsum2 = _rest(plan, first, rest, pairs, pilot)
    cp = CrossProducts(n, tuple(n for n, _ in plan.fixed) + (plan.response,), XyXy,
                       tuple(t.info for t in terms), counts1, D1, ZtXy1, A21, A22, A2Xy,
                       col_sum, col_min, col_max, np.zeros(m, dtype=np.int64))
    cp, keep, warnings = _drop_aliased(plan, cp)
    warnings += checks.check_random_effects(term_blocks(cp.terms), range(n))
    if n_input > n:
        warnings.insert(0, dropped_warning(n_input - n))
    xy = [plan.xy[j] for j in keep]
    intercept = next((j for j, e in enumerate(xy[:-1]) if e == ONE), None)
    alias = sql.key_alias(plan)
    keys = [(t.index, {alias[c]: np.asarray(t.res[alias[c]])[np.argsort(t.codes)] for c in plan.terms[t.index].keys})
            for t in terms]
    return Aggregated(cp, plan.spec, plan.response, n_input, shifted.columns(keep), intercept, warnings,
                      plan, keys)


def dropped_warning(dropped: int) -> str:
    """The warning of rows left out for missing values (design's wording)."""
    return f"{dropped} row{'s' if dropped > 1 else ''} with missing values dropped"


def _pair(pairs: dict, a: _Term, b: _Term):
    """The pair result of two terms and whether it is stored the other way round."""
    if (a.index, b.index) in pairs:
        return pairs[(a.index, b.index)], False
    return pairs[(b.index, a.index)], True


def _pair_entries(plan: Plan, a: _Term, b: _Term, pairs: dict):
    """(codes of a, codes of b, {(i, j): sums of Z_a column i times Z_b column j}) over level pairs."""
    res, swapped = _pair(pairs, a, b)
    ca = _lookup(plan, a.index, a.res, a.codes, res)
    cb = _lookup(plan, b.index, b.res, b.codes, res)
    pa, pb = len(a.info.columns), len(b.info.columns)
    sums = {(i, j): np.asarray(res[f"c_{j}_{i}" if swapped else f"c_{i}_{j}"], dtype=float)
            for i in range(pa) for j in range(pb)}
    return ca, cb, sums


def _rest(plan: Plan, first: _Term, rest: list[_Term], pairs: dict, pilot: np.ndarray):
    """A21, A22 (sparse) and A2Xy (dense) of the terms after the first, level-major within each term."""
    import scipy.sparse as sp

    sizes = [len(t.info.levels) * len(t.info.columns) for t in rest]
    offsets = np.cumsum([0] + sizes)
    q_r, p1 = int(offsets[-1]), len(first.info.columns)
    q1 = len(first.info.levels) * p1
    A2S = np.empty((q_r, len(pilot)))
    zsum2 = np.empty(q_r)
    r22, c22, v22, r21, c21, v21 = [], [], [], [], [], []
    for t, off in zip(rest, offsets):
        pk = len(t.info.columns)
        order = np.argsort(t.codes)
        _, ZS, zsum = _ztxy(t.res, pk, pilot, order)
        A2S[off:off + ZS.shape[0] * pk] = ZS.reshape(-1, len(pilot))
        zsum2[off:off + ZS.shape[0] * pk] = zsum.ravel()
        D = _sym(t.res, "zz", pk, order)
        g = np.arange(len(order))[:, None, None] * pk + off
        r22.append((g + np.arange(pk)[None, :, None]).repeat(pk, 2).ravel())
        c22.append((g + np.arange(pk)[None, None, :]).repeat(pk, 1).ravel())
        v22.append(D.ravel())
        ca, ck, sums = _pair_entries(plan, first, t, pairs)
        for (i, j), v in sums.items():
            r21.append(off + ck * pk + j)
            c21.append(ca * p1 + i)
            v21.append(v)
    for x, (t, ox) in enumerate(zip(rest, offsets)):
        for u, oy in zip(rest[x + 1:], offsets[x + 1:]):
            ct, cu, sums = _pair_entries(plan, t, u, pairs)
            pt, pu = len(t.info.columns), len(u.info.columns)
            for (i, j), v in sums.items():
                r, c = ox + ct * pt + i, oy + cu * pu + j
                r22 += [r, c]
                c22 += [c, r]
                v22 += [v, v]
    A22 = sp.csr_matrix((np.concatenate(v22), (np.concatenate(r22), np.concatenate(c22))), shape=(q_r, q_r))
    A21 = sp.csr_matrix((np.concatenate(v21), (np.concatenate(r21), np.concatenate(c21))), shape=(q_r, q1))
    A22.eliminate_zeros()
    A21.eliminate_zeros()
    return A21, A22, A2S + zsum2[:, None] * pilot[None, :], A2S, zsum2


# -- the checks design does on rows, on sums -----------------------------------------------------
def _check_values(plan: Plan, XyXy, col_min, col_max) -> None:
    """Finite predictors and response, and a response that varies (design.checks.check_values)."""
    names = [n for n, _ in plan.fixed] + [plan.response]
    for j, name in enumerate(names):
        if not (np.isfinite(XyXy[j, j]) and np.isfinite(col_min[j]) and np.isfinite(col_max[j])):
            what = f"the response '{name}'" if j == len(names) - 1 else f"the predictor '{name}'"
            raise DataError(f"{what} has infinite or undefined (NaN) values",
                            hint="remove those rows, or transform the variable so it stays finite")
    if col_min[-1] == col_max[-1]:
        raise DataError(f"the response '{plan.response}' is constant (every value is {col_min[-1]:.15g}); "
                        "there is no variation to model")


def _drop_aliased(plan: Plan, cp: CrossProducts):
    """Drop X columns in the span of earlier ones, as design does, from every cross-product."""
    from dataclasses import replace

    p = cp.p
    drop = aliased_from_gram(cp.XyXy[:p, :p]) if p else []
    names = list(cp.columns[:p])
    plan.spec.aliased = [names[j] for j in drop]
    plan.spec.fixed_names = [nm for j, nm in enumerate(names) if j not in set(drop)]
    keep = [j for j in range(p + 1) if j not in set(drop)]
    if not drop:
        return cp, keep, []
    cp = replace(cp, columns=tuple(cp.columns[j] for j in keep), XyXy=cp.XyXy[np.ix_(keep, keep)],
                 ZtXy1=cp.ZtXy1[:, :, keep], A2Xy=None if cp.A2Xy is None else cp.A2Xy[:, keep],
                 col_sum=cp.col_sum[keep], col_min=cp.col_min[keep], col_max=cp.col_max[keep],
                 nonfinite=cp.nonfinite[keep])
    k = len(drop)
    return cp, keep, [f"fixed-effect model matrix is rank deficient so dropping {k} column{'s' if k > 1 else ''}: "
                f"{', '.join(plan.spec.aliased)}"]
