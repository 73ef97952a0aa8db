"""Helpers shared by the aggregation-engine tests: fit a case in memory and through an engine."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.aggregate.source import resolve
from lmmcli.fit import fit
from lmmcli.fit_scale import fit_source
from lmmcli.io.read import read_table

pytest.importorskip("duckdb")


def fit_both(path, formula, reml=True, factors=(), refs=None, runner=None, **kw):
    """(memory fit, aggregated fit) of one formula on one file (the aggregated one through DuckDB unless
    a runner is given)."""
    from lmmcli.aggregate.duckdb_engine import DuckDBRunner

    mem = fit(formula, read_table(str(path)), reml=reml, factors=factors, refs=refs)
    runner = runner or DuckDBRunner(resolve(str(path)), threads=2, progress=False)
    agg = fit_source(formula, runner, reml=reml, factors=factors, refs=refs, **kw)
    return mem, agg


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))) if a.size else 0.0


def assert_same_fit(mem, agg, tol=1e-10, at_optimum=1e-10):
    """Same names, levels and counts; the objective at memory's theta agrees to tol, at the optimum to
    at_optimum (BOBYQA from slightly different sums may stop a little elsewhere on a flat optimum)."""
    assert agg.design.fixed_names == mem.design.fixed_names
    assert [(b.group, b.terms, b.levels) for b in agg.blocks] == [(b.group, b.terms, b.levels) for b in mem.blocks]
    assert agg.design.n == mem.design.n and agg.design.n_dropped == mem.design.n_dropped
    assert agg.design.warnings == mem.design.warnings
    assert rel(agg.sol.objective, mem.sol.objective) < at_optimum
    assert rel(agg.model.objective(mem.sol.theta), mem.model.objective(mem.sol.theta)) < tol
    sol_a, sol_m = agg.model.solve(mem.sol.theta), mem.model.solve(mem.sol.theta)
    assert rel(sol_a.beta, sol_m.beta) < 1e-8
    for ba, bm in zip(sol_a.b, sol_m.b):
        np.testing.assert_allclose(ba, bm, rtol=1e-7, atol=1e-9 * np.abs(bm).max())
