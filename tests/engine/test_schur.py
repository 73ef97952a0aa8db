"""engine/schur.py: the blocked exact fill-in for a scalar first term against the plain sparse product."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lmmcli.design.design import build_design
from lmmcli.engine import pls
from lmmcli.engine.schur import ScalarSchur
from lmmcli.formula import parse_formula


def crossed_counts(seed=0, users=300, items=40, integer=True):
    """A21 (items x users) with a heavy-tailed number of nonzeros per user, and A22 = diag(item totals)."""
    rng = np.random.default_rng(seed)
    per_user = np.minimum(1 + rng.lognormal(1.0, 1.0, size=users).astype(int), items)
    cols = np.repeat(np.arange(users), per_user)
    rows = np.concatenate([rng.choice(items, size=k, replace=False) for k in per_user])
    vals = rng.integers(1, 4, size=len(rows)).astype(float) if integer else rng.uniform(0.5, 2.0, len(rows))
    A21 = sp.csr_matrix((vals, (rows, cols)), shape=(items, users))
    A22 = sp.diags(np.asarray(A21.sum(axis=1)).ravel() + 1.0).tocsr()
    return A21, A22


@pytest.mark.parametrize("integer", [True, False])       # float32 storage of the dense part, or float64
@pytest.mark.parametrize("dense_min", [1, 5, 10**6])      # all dense, mixed, all sparse
@pytest.mark.parametrize("popular", [0, 7, 40, None])     # no popular block, some, all rows, the cost model's
def test_schur_matches_sparse_product(integer, dense_min, popular):
    A21, A22 = crossed_counts(integer=integer)
    s = np.random.default_rng(1).uniform(0.0, 2.0, A21.shape[1])
    big = ScalarSchur(A21, A22, dense_min=dense_min, popular=popular)
    assert (len(big.heavy) > 0) == (dense_min <= 40) and (len(big.light) > 0) == (dense_min > 1)
    got = np.tril(big(s))
    want = np.tril((A22 - A21 @ sp.diags(s) @ A21.T).toarray())
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("dense_min", [1, 5, 10**6])
@pytest.mark.parametrize("popular", [0, 7, 40])
def test_quad_matches_dense(dense_min, popular):
    A21, A22 = crossed_counts(integer=False)
    rng = np.random.default_rng(2)
    B = rng.standard_normal((A21.shape[0],) * 2)
    Q = B + B.T
    got = ScalarSchur(A21, A22, dense_min=dense_min, popular=popular).quad(np.tril(Q))
    want = np.einsum("ig,ij,jg->g", A21.toarray(), Q, A21.toarray())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def crossed_frame(seed=3, users=400, items=60):
    """rating ~ 1 + (1|user) + (1|item) rows with heavy-tailed ratings per user."""
    A21, _ = crossed_counts(seed, users, items)
    item, user = A21.nonzero()
    rng = np.random.default_rng(seed)
    y = 3.0 + 0.5 * rng.standard_normal(users)[user] + 0.7 * rng.standard_normal(items)[item] + rng.standard_normal(len(user))
    return pd.DataFrame({"user": [f"u{u}" for u in user], "item": [f"i{i}" for i in item], "y": y})


@pytest.mark.parametrize("reml", [True, False])
def test_objective_and_cond_var_match_fill_pattern(reml):
    design = build_design(parse_formula("y ~ 1 + (1|user) + (1|item)"), crossed_frame())
    model = pls.PlsModel.from_rows(design.X, design.y, design.blocks, reml)
    assert model.rest_part.K is not None
    thetas = [np.array([0.6, 0.9]), np.array([1.3, 0.2]), np.array([0.0, 0.5])]
    want = [model.objective(t) for t in thetas]
    ref = model.solve(thetas[0])
    rp = model.rest_part
    rp.K, rp.big = None, ScalarSchur(rp.A21, rp.A22, dense_min=8, popular=10)    # the blocked path, all parts used
    assert len(rp.big.heavy) and len(rp.big.light) and len(rp.big.P) and len(rp.big.N)
    got = [model.objective(t) for t in thetas]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    sol = model.solve(thetas[0])
    np.testing.assert_allclose(sol.beta, ref.beta, rtol=1e-11)
    for a, b in zip(sol.b, ref.b):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for a, b in zip(sol.cond_var, ref.cond_var):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_repeated_weights_reuse_the_last_results(monkeypatch):
    """The last CACHED (three) distinct weights are not formed again; a fourth evicts the least recently used.
    The convergence check's points and the solution after it (first-term thetas a-, a, a+, a, a+, a-, a+,
    a-, then a) form three products."""
    from lmmcli.engine import schur

    A21, A22 = crossed_counts()
    big = ScalarSchur(A21, A22, dense_min=5)
    formed = []
    form = big._form
    monkeypatch.setattr(big, "_form", lambda s: formed.append(s[0] / 0.3) or form(s))
    s = np.full(A21.shape[1], 0.3)
    first = big(s)
    first[:] = 0.0                                    # the caller owns (and overwrites) what it gets
    other = big(s * 2)
    again = big(s)
    want = (A22 - A21 @ sp.diags(s) @ A21.T).toarray()
    np.testing.assert_allclose(again, np.tril(want), rtol=1e-13)      # the upper triangle is zero
    assert not np.allclose(np.tril(other), np.tril(want))
    big(s * 3)
    big(s)
    big(s * 2)
    assert schur.CACHED == 3 and np.allclose(formed, [1, 2, 3])
    big(s * 4)                                        # evicts s * 3 (used longest ago)
    big(s * 3)
    assert np.allclose(formed, [1, 2, 3, 4, 3])
    formed.clear()
    for k in (5, 6, 7, 6, 7, 5, 7, 5, 6):             # a- = 5, a = 6, a+ = 7
        big(s * k)
    assert np.allclose(formed, [5, 6, 7])


def test_threaded_blocks_give_the_same_product_and_quad(monkeypatch):
    """Many row blocks and pair chunks (run one thread per core) add up to the plain product and quad."""
    from lmmcli.engine import schur

    A21, A22 = crossed_counts(integer=False)
    s = np.random.default_rng(4).uniform(0.0, 2.0, A21.shape[1])
    B = np.random.default_rng(5).standard_normal((A21.shape[0],) * 2)
    Q = B + B.T
    monkeypatch.setattr(schur, "ROW_BLOCK", 3)
    monkeypatch.setattr(schur, "PAIRS", 50)
    monkeypatch.setattr(schur.blas, "cores", lambda: 2)
    big = ScalarSchur(A21, A22, dense_min=10, popular=7)
    assert len(big.N) > 10 * schur.ROW_BLOCK
    want = np.tril((A22 - A21 @ sp.diags(s) @ A21.T).toarray())
    np.testing.assert_allclose(np.tril(big(s)), want, rtol=1e-13, atol=1e-12 * np.abs(want).max())
    want_quad = np.einsum("ig,ij,jg->g", A21.toarray(), Q, A21.toarray())
    np.testing.assert_allclose(big.quad(np.tril(Q)), want_quad, rtol=1e-12, atol=1e-12 * np.abs(want_quad).max())
