"""Exact quantiles of the scaled residuals (y - X beta - Z b) / sigma in a second pass over the rows,
never a load: one pass counts the residuals in fine bins (with their minimum and maximum), a second
pass fetches only the residuals in the bins that hold the wanted order statistics.

Quantiles are R's type 7 (quantile()'s default, as np.quantile): between order statistics
floor(h) and floor(h) + 1 for h = (n - 1) q.
"""

from __future__ import annotations

import numpy as np

from lmmcli.aggregate import sql

PROBS = (0.25, 0.5, 0.75)
BINS = 1 << 16
RANGE = 16.0       # bins cover [-RANGE, RANGE] standard deviations; beyond it, one bin each side


def residual_expr(plan, d: sql.Dialect, beta, b_tables) -> str:
    """SQL of the scaled residual of a row of the model select joined to the random-effect tables."""
    m = plan.m
    y = f"(s{m - 1} + {float(plan.pilot[m - 1])!r})"
    parts = [y]
    for j, bj in enumerate(beta):
        if bj != 0.0:
            col = sql._s(plan, j)
            parts.append(f"- {float(bj)!r}" + (f" * ({col} + {float(plan.pilot[j])!r})" if col else ""))
    for k, table in b_tables:
        for a in range(len(plan.terms[k].exprs)):
            z = sql._z(plan, k, a)
            parts.append(f"- t{k}.b_{a}" + (f" * {z}" if z else ""))
    return "(" + " ".join(parts) + ")"


def _from(plan, d: sql.Dialect, b_tables) -> str:
    """The model select joined to each term's table of conditional modes on its keys."""
    alias = sql.key_alias(plan)
    out = f"({sql.model_select(plan, d)}) AS m"
    for k, table in b_tables:
        on = " AND ".join(f"m.{alias[c]} = t{k}.{alias[c]}" for c in plan.terms[k].keys)
        out += f" JOIN {table} AS t{k} ON {on}"
    return out


def quantiles(runner, plan, beta, sigma, b_tables) -> dict[str, float]:
    """min, q1, median, q3, max of the scaled residuals; b_tables: [(plan term index, registered table)]."""
    d = runner.dialect
    r = f"({residual_expr(plan, d, beta, b_tables)} / {float(sigma)!r})"
    width = 2 * RANGE / BINS
    bin_sql = f"LEAST(GREATEST(CAST(FLOOR(({r} + {RANGE!r}) / {width!r}) AS BIGINT), -1), {BINS})"
    src = _from(plan, d, b_tables)
    hist = runner.run(f"SELECT {bin_sql} AS bin, COUNT(*) AS n, MIN({r}) AS lo, MAX({r}) AS hi "
                      f"FROM {src} GROUP BY 1")
    order = np.argsort(hist["bin"])
    bins, counts = np.asarray(hist["bin"])[order], np.asarray(hist["n"], dtype=np.int64)[order]
    n = int(counts.sum())
    ends = np.cumsum(counts)
    wanted = sorted({k for q in PROBS for k in _ranks(n, q)})
    where = np.searchsorted(ends, np.array(wanted), side="right")    # bin position of each rank
    need = sorted(set(int(bins[w]) for w in where))
    vals = runner.run(f"SELECT {bin_sql} AS bin, {r} AS r FROM {src} WHERE {bin_sql} IN "
                      f"({', '.join(map(str, need))})")
    stats = {}
    for rank in wanted:
        w = int(np.searchsorted(ends, rank, side="right"))
        before = int(ends[w - 1]) if w > 0 else 0
        inbin = np.sort(np.asarray(vals["r"], dtype=float)[np.asarray(vals["bin"]) == bins[w]])
        stats[rank] = float(inbin[rank - before])
    out = {"min": float(np.min(hist["lo"])), "max": float(np.max(hist["hi"]))}
    for key, q in zip(("q1", "median", "q3"), PROBS):
        lo, hi = _ranks(n, q)
        h = (n - 1) * q
        out[key] = stats[lo] + (h - lo) * (stats[hi] - stats[lo])
    return {k: out[k] for k in ("min", "q1", "median", "q3", "max")}


def _ranks(n: int, q: float) -> tuple[int, int]:
    """The two 0-based order statistics type-7 quantile q interpolates between."""
    lo = int(np.floor((n - 1) * q))
    return lo, min(lo + 1, n - 1)
