"""Kenward-Roger (lmmcli.inference.kenward_roger) against pbkrtest via lmerTest 3.1-3, and its structure (no n x n).

Reference numbers: `kenward_roger` (df, se, p) in tests/reference/expected/*.json (REML fits only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import CASES
from lmmcli.inference import kenward_roger as kr
from lmmcli.distributions import t_two_sided_p
from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.fit import fit
from lmmcli.inference.satterthwaite import fixed_inference
from lmmcli.engine.pls import lambda_matrix, sparse_Z, split_theta

KR_CASES = [c["id"] for c in CASES if c["expected"].get("kenward_roger")]


@pytest.mark.parametrize("cid", KR_CASES)
def test_df_se_and_p_match_pbkrtest(fits, cases, cid):
    exp = cases[cid]["expected"]
    inf = fixed_inference(fits[cid], "kenward-roger")
    np.testing.assert_allclose(inf.df, exp["kenward_roger"]["df"], rtol=1e-4)
    np.testing.assert_allclose(inf.std_error, exp["kenward_roger"]["se"], rtol=2e-4)
    t = np.array(exp["fixef"]["estimate"]) / inf.std_error
    np.testing.assert_allclose(t_two_sided_p(t, inf.df), exp["kenward_roger"]["p"], atol=1e-6)


@pytest.mark.parametrize("cid", ["sleepstudy_slope", "gpa_job", "penicillin_crossed", "pastes_nested"])
def test_woodbury_pieces_equal_the_dense_computation(fits, cid):
    """Z'S^-1Z, Z'S^-2Z, Z'S^-1X, Z'S^-2X, X'S^-2X, X'S^-3X, tr(S^-2) against Sigma formed densely (small n)."""
    fm = fits[cid]
    pc = kr._Pieces(fm)
    Z = sparse_Z(fm.blocks).toarray()
    X, s2 = fm.design.X, fm.sol.sigma ** 2
    Lam = lambda_matrix(fm.blocks, split_theta(fm.blocks, fm.sol.theta)).toarray()
    Si = np.linalg.inv(s2 * (np.eye(len(X)) + Z @ Lam @ Lam.T @ Z.T))
    dense = lambda M: M.toarray() if sp.issparse(M) else np.asarray(M)  # noqa: E731
    for got, want in [(pc.M, Z.T @ Si @ Z), (pc.M2, Z.T @ Si @ Si @ Z), (pc.B, Z.T @ Si @ X),
                      (pc.B2, Z.T @ Si @ Si @ X), (pc.XS2X, X.T @ Si @ Si @ X), (pc.XS3X, X.T @ Si @ Si @ Si @ X)]:
        want = np.asarray(want)
        np.testing.assert_allclose(dense(got), want, rtol=1e-7, atol=1e-9 * np.max(np.abs(want)))
    assert pc.trS2 == pytest.approx(np.trace(Si @ Si), rel=1e-9)


def test_adjusted_vcov_is_at_least_the_plain_one(fits):
    """Kenward-Roger inflates (never shrinks) the variances here: Phi_A - Phi is positive semidefinite."""
    fm = fits["gpa_job"]
    Vadj, _ = kr.kenward_roger(fm)
    assert np.min(np.linalg.eigvalsh(Vadj - fm.vcov())) > -1e-12


def test_ml_fit_is_declined(fits):
    with pytest.raises(UsageError, match="REML"):
        fixed_inference(fits["sleepstudy_slope_ml"], "kenward-roger")


def test_several_large_terms_are_declined_before_any_allocation(fits, monkeypatch):
    """Several random terms need dense q x q pieces; above the limit a clear error, not a memory blow-up."""
    monkeypatch.setattr(kr, "MAX_DENSE_Q", 20)                        # penicillin has q = 24 + 6 = 30
    monkeypatch.setattr(kr, "_Pieces", lambda fm: pytest.fail("allocated before declining"))
    with pytest.raises(ModelSpecError, match="Kenward-Roger"):
        kr.kenward_roger(fits["penicillin_crossed"])


def _slopes(n: int, ngroups: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, ngroups, n)
    x = rng.standard_normal(n)
    b = rng.standard_normal((ngroups, 2)) * [1.0, 0.5]
    y = 1 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.standard_normal(n)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_seventy_thousand_rows_run_without_n_by_n():
    """70k rows, 2,000 groups with slopes: a 70k x 70k Sigma would need 39 GB; this takes megabytes."""
    import tracemalloc

    fm = fit("y ~ x + (x|g)", _slopes(70_000, 2_000), factors=("g",))
    tracemalloc.start()
    Vadj, df = kr.kenward_roger(fm)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200e6
    assert np.all(np.isfinite(df)) and np.all(df > 1000)    # many groups: close to the large-sample limit
    np.testing.assert_allclose(np.sqrt(np.diag(Vadj)), np.sqrt(np.diag(fm.vcov())), rtol=1e-3)
