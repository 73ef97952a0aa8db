"""engine.wide: the objective with X profiled out equals PlsModel's, and so do diag Var(beta) and the df."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmcli.design.design import build_design
from lmmcli.engine import gradient, optimize, wide
from lmmcli import linalg
from lmmcli.engine.pls import PlsModel, unscaled_vcov
from lmmcli.fit import fit
from lmmcli.formula import parse_formula
from lmmcli.inference import satterthwaite


def _frame(levels=210, n=700, seed=5):
    rng = np.random.default_rng(seed)
    f, g, h = rng.integers(0, levels, n), rng.integers(0, 40, n), rng.integers(0, 15, n)
    x = rng.normal(size=n)
    y = (rng.normal(size=levels)[f] + rng.normal(size=40)[g] * (1 + 0.5 * x) + rng.normal(size=15)[h]
         + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "f": [f"f{i:03d}" for i in f], "g": [f"g{i}" for i in g],
                         "h": [f"h{i}" for i in h]})


FORMULAS = ["y ~ f + x + (1|g)", "y ~ f + x + (x|g)", "y ~ f + (1|g) + (1|h)", "y ~ f + x + (x|g) + (1|h)"]


@pytest.mark.parametrize("text", FORMULAS)
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("split", [True, False])
def test_wide_objective_and_variances_equal_the_usual_ones(text, reml, split, monkeypatch):
    if not split:                      # X'X factored densely (a design without a large indicator block)
        monkeypatch.setattr(linalg, "split_gram", lambda A: None)
    design = build_design(parse_formula(text), _frame())
    model = PlsModel.from_rows(design.X, design.y, design.blocks, reml)
    w = wide.for_model(model)
    assert w is not None and w.splits == split
    rng = np.random.default_rng(1)
    for theta in (model.theta0, np.abs(model.theta0 * 0.6 + 0.1 * rng.normal(size=len(model.theta0)))):
        assert w.objective(theta) == pytest.approx(model.objective(theta), rel=1e-12, abs=1e-9)
        sol, parts = model.solve(theta, cond_var=False), w.parts(theta)
        assert (parts.logdet_L, parts.pwrss, parts.logdet_RX) == pytest.approx(
            (sol.logdet_L, sol.pwrss, sol.logdet_RX), rel=1e-11, abs=1e-9)
        V = satterthwaite.unscaled_vcov(model, theta)
        np.testing.assert_allclose(w.vcov_diag(theta), np.diag(V), rtol=1e-10)
        np.testing.assert_allclose(w.vcov(theta), V, rtol=1e-9, atol=1e-12 * np.abs(V).max())
        Wxx = np.diag(np.linspace(0.5, 2.0, model.p))              # units: W Var W'
        np.testing.assert_allclose(w.vcov_diag(theta, Wxx), np.diag(Wxx @ V @ Wxx), rtol=1e-10)
        np.testing.assert_allclose(w.vcov(theta, Wxx), Wxx @ V @ Wxx, rtol=1e-9,
                                   atol=1e-12 * np.abs(Wxx @ V @ Wxx).max())


@pytest.mark.parametrize("scale", [1.0, 1e6])
def test_the_fits_vcov_through_the_split_equals_the_one_from_RX(scale, monkeypatch):
    """FittedModel.vcov of a wide model whose X'X splits comes from engine.wide (O(p^2 q)); it is the
    matrix (RX'RX)^-1 sigma^2 of the solution, also when the fit is stored in other units."""
    df = _frame()
    df["x"] *= scale
    fm = fit("y ~ f + x + (1|g)", df)
    assert wide.for_model(getattr(fm.model, "inner", fm.model)).splits
    assert fm.engine.scaled == (scale != 1.0)
    want = fm.sol.sigma ** 2 * unscaled_vcov(fm.sol.RX)
    got = fm.vcov()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_only_wide_models_take_the_wide_path():
    narrow = build_design(parse_formula("y ~ x + (1|g)"), _frame())
    assert wide.for_model(PlsModel.from_rows(narrow.X, narrow.y, narrow.blocks)) is None
    few_levels = build_design(parse_formula("y ~ f + (1|g)"), _frame(levels=50, n=300))
    assert wide.for_model(PlsModel.from_rows(few_levels.X, few_levels.y, few_levels.blocks)) is None


def test_satterthwaite_df_is_the_same_on_the_wide_path(monkeypatch):
    fm = fit("y ~ f + x + (x|g)", _frame())
    got = satterthwaite.satterthwaite_df(fm.model, fm.sol.theta, fm.sol.sigma, fm.vcov())
    monkeypatch.setattr(wide, "WIDE_MIN_P", 10 ** 9)           # the usual path, by the same differences
    monkeypatch.setattr(gradient, "available", lambda model: False)
    want = satterthwaite.satterthwaite_df(fm.model, fm.sol.theta, fm.sol.sigma, fm.vcov())
    np.testing.assert_allclose(got, want, rtol=1e-6)
    opt = optimize.fit_theta(fm.model)
    assert opt.fmin == pytest.approx(fm.sol.objective, abs=1e-7)


def test_satterthwaite_df_on_the_wide_path_in_other_units(monkeypatch):
    """A covariate in the millions: the engine stores the record in other units (ScaledModel); the wide
    path maps its pieces back (Wxx, wyy) and gives the df of the usual path."""
    df = _frame()
    df["x"] = df["x"] * 1e6 + 3e6
    fm = fit("y ~ f + x + (1|g)", df)
    assert type(fm.model).__name__ == "ScaledModel"
    got = satterthwaite.satterthwaite_df(fm.model, fm.sol.theta, fm.sol.sigma, fm.vcov())
    monkeypatch.setattr(wide, "WIDE_MIN_P", 10 ** 9)
    monkeypatch.setattr(gradient, "available", lambda model: False)
    want = satterthwaite.satterthwaite_df(fm.model, fm.sol.theta, fm.sol.sigma, fm.vcov())
    np.testing.assert_allclose(got, want, rtol=1e-6)
