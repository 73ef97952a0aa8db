"""Many fixed effects (a factor with thousands of levels): aliasing in O(p^3), the sparse X'X."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lmmcli.design import aliasing
from lmmcli.design.aliasing import ALIAS_TOL, aliased_columns
from lmmcli.linalg import gram as _gram


def _reference_aliased(X):
    """R's rule column by column (a solve per column): the definition the fast version must match."""
    XtX = X.T @ X
    keep, drop = [], []
    for j in range(X.shape[1]):
        A = XtX[np.ix_(keep, keep)]
        d = XtX[j, j] - (XtX[keep, j] @ np.linalg.solve(A, XtX[keep, j]) if keep else 0.0)
        (drop if d <= ALIAS_TOL * max(XtX[j, j], 1e-300) else keep).append(j)
    return drop


@pytest.mark.parametrize("seed", range(6))
def test_aliasing_matches_the_column_by_column_rule(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 12))
    for j in rng.choice(np.arange(2, 12), size=rng.integers(0, 5), replace=False):
        a, b = rng.integers(0, j, 2)
        X[:, j] = X[:, a] * rng.normal() + X[:, b] * rng.normal()      # in the span of earlier columns
    assert aliased_columns(X) == _reference_aliased(X)


def _indicators(n, levels, seed=0):
    rng = np.random.default_rng(seed)
    f = np.concatenate([np.arange(levels), rng.integers(0, levels, n - levels)])
    X = np.zeros((n, levels + 1))
    X[:, 0] = 1.0
    X[np.arange(n), 1 + f] = 1.0
    return X, f


def test_a_factor_with_all_levels_and_an_intercept_drops_one():
    X, _ = _indicators(600, 300)
    assert aliased_columns(X) == [300]          # the last indicator is the intercept minus the others


def test_sparse_gram_equals_dense():
    X, _ = _indicators(3000, 400)
    X[:, 5] *= 2.5
    np.testing.assert_allclose(_gram(X), X.T @ X, rtol=1e-14, atol=1e-12)


def test_aliasing_is_not_quartic():
    """p = 1,500 indicator columns: well under a second (the solve-per-column rule took minutes)."""
    X, _ = _indicators(4500, 1500)
    t = time.perf_counter()
    assert aliased_columns(X[:, :-1]) == []
    assert time.perf_counter() - t < 10.0


def test_the_split_check_clears_only_full_rank_designs(monkeypatch):
    """A full-rank X'X with an indicator block is cleared by the split check in O(p) (no dense
    Cholesky); an aliased one is not, and goes to R's rule column by column."""
    X, _ = _indicators(900, 300)
    X = np.column_stack([X[:, :-1], np.random.default_rng(1).normal(size=900)])
    assert aliasing._clearly_full_rank(_gram(X))
    assert not aliasing._clearly_full_rank(_gram(_indicators(900, 300)[0]))     # all levels + intercept
    chol = np.linalg.cholesky

    def small_only(A):
        assert len(A) < 10, "a dense Cholesky of X'X"
        return chol(A)

    monkeypatch.setattr(np.linalg, "cholesky", small_only)   # only the split's 2 x 2 Schur complement
    assert aliased_columns(X) == []
