"""Exact quantiles of the scaled residuals (y - X beta - Z b) / sigma in one more pass over the rows,
never a load.

One pass, usually: a pilot (the first PILOT residuals the source yields, no scan of the rest) gives
windows around each wanted order statistic, wide enough (WINDOW_SD standard errors of the pilot's
quantile, plus a margin) that they almost surely hold it; the pass then counts the residuals between
the windows and returns those inside them, value by value (a GROUP BY on a window code and, inside
a window only, the value itself: plain SQL, the same in DuckDB and Spark). When a wanted rank falls
between windows after all (a pilot unlike the rest of the data), the exact two-pass method runs:
a pass counts the residuals in fine bins (with their minimum and maximum), a second fetches only the
residuals in the bins that hold the wanted order statistics.

Quantiles are R's type 7 (quantile()'s default, as np.quantile): between order statistics
floor(h) and floor(h) + 1 for h = (n - 1) q.
"""

from __future__ import annotations

import numpy as np

from lmmcli.aggregate import sql

PROBS = (0.25, 0.5, 0.75)
BINS = 1 << 16
RANGE = 16.0       # bins cover [-RANGE, RANGE] standard deviations; beyond it, one bin each side
PILOT = 4_000_000  # residuals read for the windows (their query stops after them)
WINDOW_SD = 8.0    # half-width of a window: this many standard errors of the pilot's quantile ...
WINDOW_MIN = 5e-5  # ... plus this share of the rows (a pilot from the first rows need not be random)


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
    rows = f"(SELECT {r} AS r FROM {_from(plan, d, b_tables)}) AS rr"      # r is computed once a row
    pilot = np.sort(np.asarray(runner.run(f"SELECT r FROM {rows} LIMIT {PILOT}")["r"], dtype=float))
    found = _windowed(runner, rows, pilot)
    if found is None:
        found = _two_pass(runner, rows)
    n, lo, hi, stats = found
    out = {"min": lo, "max": hi}
    for key, q in zip(("q1", "median", "q3"), PROBS):
        a, b = _ranks(n, q)
        h = (n - 1) * q
        out[key] = stats[a] + (h - a) * (stats[b] - stats[a])
    return {k: out[k] for k in ("min", "q1", "median", "q3", "max")}


def _windows(pilot: np.ndarray) -> list[tuple[float, float]]:
    """Disjoint sorted intervals of residual values around each wanted quantile of the pilot."""
    m = len(pilot)
    spans = []
    for q in PROBS:
        half = WINDOW_SD * np.sqrt(q * (1.0 - q) / m) + WINDOW_MIN
        spans.append((float(pilot[int(np.floor(max(q - half, 0.0) * (m - 1)))]),
                      float(pilot[int(np.ceil(min(q + half, 1.0) * (m - 1)))])))
    merged = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _windowed(runner, rows: str, pilot: np.ndarray):
    """(n, min, max, {rank: value}) from one pass, or None when a wanted rank is outside the windows.

    Code 2j + 1 marks window j, code 2j the gap below it (the last gap is 2J); a window's rows are
    grouped by value (with their multiplicities), a gap's rows into one group.
    """
    wins = _windows(pilot)
    case = " ".join(f"WHEN r < {lo!r} THEN {2 * j} WHEN r <= {hi!r} THEN {2 * j + 1}"
                    for j, (lo, hi) in enumerate(wins))
    res = runner.run(f"SELECT w, v, COUNT(*) AS n, MIN(r) AS lo, MAX(r) AS hi FROM "
                     f"(SELECT r, w, CASE WHEN w % 2 = 1 THEN r END AS v FROM "
                     f"(SELECT r, CASE {case} ELSE {2 * len(wins)} END AS w FROM {rows}) AS c) AS cv "
                     f"GROUP BY w, v")
    w = np.asarray(res["w"], dtype=np.int64)
    v = np.asarray(res["lo"], dtype=float)          # a window group's value (= its min); a gap's min
    order = np.lexsort((v, w))
    w, v, counts = w[order], v[order], np.asarray(res["n"], dtype=np.int64)[order]
    n = int(counts.sum())
    ends = np.cumsum(counts)
    stats = {}
    for rank in sorted({k for q in PROBS for k in _ranks(n, q)}):
        at = int(np.searchsorted(ends, rank, side="right"))
        if w[at] % 2 == 0:
            return None            # between windows: the pilot misled; fall back to the exact two passes
        stats[rank] = float(v[at])
    return n, float(np.min(res["lo"])), float(np.max(res["hi"])), stats


def _two_pass(runner, rows: str):
    """(n, min, max, {rank: value}) by a histogram pass and a pass over the bins that hold the ranks."""
    width = 2 * RANGE / BINS
    bin_sql = f"LEAST(GREATEST(CAST(FLOOR((r + {RANGE!r}) / {width!r}) AS BIGINT), -1), {BINS})"
    binned = f"(SELECT r, {bin_sql} AS bin FROM {rows}) AS rb"
    hist = runner.run(f"SELECT bin, COUNT(*) AS n, MIN(r) AS lo, MAX(r) AS hi FROM {binned} GROUP BY bin")
    order = np.argsort(hist["bin"])
    bins, counts = np.asarray(hist["bin"])[order], np.asarray(hist["n"], dtype=np.int64)[order]
    n = int(counts.sum())
    ends = np.cumsum(counts)
    wanted = sorted({k for q in PROBS for k in _ranks(n, q)})
    where = np.searchsorted(ends, np.array(wanted), side="right")    # bin position of each rank
    need = sorted(set(int(bins[w]) for w in where))
    vals = runner.run(f"SELECT bin, r FROM {binned} WHERE bin IN ({', '.join(map(str, need))})")
    stats = {}
    for rank in wanted:
        w = int(np.searchsorted(ends, rank, side="right"))
        before = int(ends[w - 1]) if w > 0 else 0
        inbin = np.sort(np.asarray(vals["r"], dtype=float)[np.asarray(vals["bin"]) == bins[w]])
        stats[rank] = float(inbin[rank - before])
    return n, float(np.min(hist["lo"])), float(np.max(hist["hi"])), stats


def _ranks(n: int, q: float) -> tuple[int, int]:
    """The two 0-based order statistics type-7 quantile q interpolates between."""
    lo = int(np.floor((n - 1) * q))
    return lo, min(lo + 1, n - 1)
