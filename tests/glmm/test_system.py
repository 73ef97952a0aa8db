"""The weighted PLS system of glmm.system: the sparse coupling (large crossed models) against the dense
one, Z' W X from the cross-products against the direct sums, and the conditional variances."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.glmm import system
from lmmcli.glmm.system import WeightedSystem
from tests.glmm.reference import CASES, REF


def _design(case_id):
    from lmmcli.formula import parse_formula
    from lmmcli.glmm.design import build_glmm_design
    from lmmcli.glmm.family import make_family
    from lmmcli.io.read import read_table

    c = CASES[case_id]
    df = read_table(str(REF / c["csv"]))
    fam = make_family(c["family"], c["link"])
    return build_glmm_design(parse_formula(c["formula"]), df, fam, c["weights"], c["factors"], None, "data").design


@pytest.mark.parametrize("case_id", ["grouseticks", "verbagg"])
def test_sparse_coupling_is_the_dense_factor(case_id, monkeypatch):
    d = _design(case_id)
    monkeypatch.setattr(system, "SPARSE_COUPLING", 10 ** 15)
    dense = WeightedSystem(d.blocks)
    monkeypatch.setattr(system, "SPARSE_COUPLING", 0)
    monkeypatch.setattr(system, "CHUNK", 7)              # several chunks of columns
    sparse = WeightedSystem(d.blocks)
    assert sparse.sparse and not dense.sparse
    rng = np.random.default_rng(3)
    W = rng.uniform(0.05, 0.3, dense.n)
    theta = np.linspace(0.4, 1.3, len(dense.blocks))
    Fd, Fs = dense.factor(W, theta), sparse.factor(W, theta)
    assert Fs.logdet_L == pytest.approx(Fd.logdet_L, rel=1e-12)
    R = rng.normal(size=(dense.q, 3))
    np.testing.assert_allclose(sparse.solve(Fs, R), dense.solve(Fd, R), rtol=1e-10, atol=1e-12)
    for a, b in zip(sparse.cond_var(Fs), dense.cond_var(Fd)):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("case_id", ["binary_slope", "verbagg", "contraception"])
def test_zt_wx_from_cross_products_and_level_constants_is_the_direct_sum(case_id):
    d = _design(case_id)
    sysm = WeightedSystem(d.blocks)
    plan = sysm.wx_plan(d.X)
    assert plan[0][0] == ("match", 0)            # the intercept is the first term's first column
    if case_id == "binary_slope":                # y ~ x + (x | g): both columns of X are columns of Z
        assert [kind for kind, _ in plan[0]] == ["match", "match"]
    if case_id == "verbagg":                     # Anger, Gender by subject; btype, situ by item: A21 across
        assert [kind for kind, _ in plan[0]] == ["match", "const", "const", "across", "across", "across"]
        assert [kind for kind, _ in plan[1]] == ["const", "across", "across", "const", "const", "const"]
    rng = np.random.default_rng(1)
    W = rng.uniform(0.1, 0.25, sysm.n)
    F = sysm.factor(W, _theta(sysm))
    WX = np.asfortranarray(d.X) * W[:, None]
    np.testing.assert_allclose(sysm.zt_wx(F, W, WX, plan), sysm.zt_times(WX), rtol=1e-11, atol=1e-13)
    sysm.intercepts_dense = False                # the bincounts by term, as for any other model
    np.testing.assert_allclose(sysm.zt_wx(F, W, WX, plan), sysm.zt_times(WX), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("case_id", ["verbagg", "crossed_counts", "grouseticks_scaled", "cbpp_herd_period"])
def test_two_intercepts_factor_from_A21_is_the_general_one(case_id):
    """(1 | g1) + (1 | g2): A11 and A22 from A21's sums, Z'V by one bincount into the cells, Z'WX across
    the terms -- the same factor, solves, sums and conditional variances as the general path."""
    d = _design(case_id)
    fast = WeightedSystem(d.blocks)
    assert fast.intercepts_dense
    # one row per (g1, g2) cell (VerbAgg's subjects x items): A21 is W scattered into the cells, no bincount
    cells = {(a, b) for a, b in zip(d.blocks[0].codes.tolist(), d.blocks[1].codes.tolist())}
    assert fast.a21_sums.scatter == (len(cells) == fast.n)
    assert fast.a21_sums.scatter or case_id != "verbagg"
    general = WeightedSystem(d.blocks)
    general.intercepts_dense = False
    rng = np.random.default_rng(5)
    W = rng.uniform(0.05, 0.3, fast.n)
    theta = np.array([0.9, 0.4])
    Ff, Fg = fast.factor(W, theta), general.factor(W, theta)
    assert Ff.logdet_L == pytest.approx(Fg.logdet_L, rel=1e-13)
    R = rng.normal(size=(fast.q, 2))
    np.testing.assert_allclose(fast.solve(Ff, R), general.solve(Fg, R), rtol=1e-11, atol=1e-13)
    V = rng.normal(size=(fast.n, 3))
    np.testing.assert_allclose(fast.zt_times(V), general.zt_times(V), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(fast.zt_times(V[:, 0]), general.zt_times(V[:, 0]), rtol=1e-11, atol=1e-12)
    WX = np.asfortranarray(d.X) * W[:, None]
    np.testing.assert_allclose(fast.zt_wx(Ff, W, WX, fast.wx_plan(d.X)), general.zt_wx(Fg, W, WX, general.wx_plan(d.X)),
                               rtol=1e-11, atol=1e-12)
    for a, b in zip(fast.cond_var(Ff), general.cond_var(Fg)):
        np.testing.assert_allclose(a, b, rtol=1e-11)


def _theta(sysm):
    from lmmcli.engine.pls import theta_start

    return theta_start(sysm.blocks) * 0.7


def test_pirls_runs_from_one_start_reuse_its_weights_and_match_a_fresh_model():
    """glmer_pirls keeps mu and the working weights at its start eta for the next run from the same
    array: runs at other (theta, beta) after it are what a fresh model computes."""
    from lmmcli.glmm.pirls import GlmmModel

    c = CASES["verbagg"]
    d = _design("verbagg")
    y = d.y

    def model():
        from lmmcli.glmm.family import make_family

        m = GlmmModel(d.X, d.blocks, y, np.ones(len(y)), np.zeros(len(y)), make_family(c["family"], c["link"]))
        m.set_glmer_start()
        m.eta0 = m.eta_start
        return m

    m = model()
    beta = np.linalg.lstsq(d.X, m.eta_start, rcond=None)[0]
    first = m.glmer_pirls(np.array([1.0, 0.5]), beta)
    assert m._start[0] is m.eta0
    again = m.glmer_pirls(np.array([1.2, 0.4]), beta + 0.01)
    fresh = model().glmer_pirls(np.array([1.2, 0.4]), beta + 0.01)
    assert again.dev == fresh.dev and np.array_equal(again.u, fresh.u)
    assert first.dev != again.dev
