"""Fits in well-conditioned coordinates (scaling.py): a slope on a predictor in the hundreds or thousands
reaches the optimum lme4 reaches only after scale(age), and the map back to age's units is exact.

Reference: tests/reference/conditioning (R 4.2.2, lme4 1.1-31, make_reference.R): lme4's fit of
circumference ~ scale(age) + (scale(age) | Tree) on R's Orange, mapped back to age's units, with lme4's
own REML devfun for raw age evaluated there. lme4 with raw age stops 0.095 higher and warns.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REF
from lmmcli.engine.pls import PlsModel
from lmmcli.fit import fit

HERE = REF / "conditioning"
EXP = json.loads((HERE / "expected.json").read_text())


@pytest.fixture(scope="module")
def orange():
    return pd.read_csv(HERE / "orange.csv")


@pytest.mark.parametrize("c", [1.0, 10.0, 0.1])
def test_slope_on_a_large_predictor_reaches_the_scaled_optimum(orange, c):
    """age in days (118..1582), and in tenths of days and tens of days: the same optimum."""
    fm = fit(EXP["formula"], orange.assign(age=orange.age * c))
    T = fm.cp.units.T[0]
    assert T[0, 1] != 0                                   # age's column was centred internally
    # REML's log|RX|^2 has the units of X: age * c adds 2 log c
    assert fm.sol.objective == pytest.approx(EXP["reml"] + 2 * np.log(c), abs=1e-6)
    assert EXP["reml"] < EXP["lme4_raw_reml"] - 0.09      # lme4 with raw age stops higher
    assert fm.sol.sigma == pytest.approx(EXP["sigma"], rel=1e-5)
    np.testing.assert_allclose(fm.sol.beta * [1, c], EXP["fixef"], rtol=1e-6)
    vc = fm.result().variance_components
    np.testing.assert_allclose([vc[0].sd, vc[1].sd * c], EXP["sd"], rtol=1e-4)
    assert fm.result().correlations[0].correlation == pytest.approx(EXP["cor"], abs=1e-6)
    assert fm.opt.converged and fm.is_singular()           # a correlation of -1: lme4's boundary fit


def test_the_map_back_is_exact(orange):
    """The fit's solution (computed in centred units, mapped back) equals the plain engine's solve on the
    raw rows at the same theta: the T_k re-triangularisation, beta, b, u, RX and the conditional variances."""
    fm = fit(EXP["formula"], orange)
    X, y, blocks = fm.inputs()
    theta = fm.sol.theta * [1.0, 1.0, 0.0] + [0.0, 0.0, 1e-4]    # off the boundary, where u is unique
    plain = PlsModel.from_rows(X, y, blocks).solve(theta)
    mapped = fm.model.solve(theta)
    for name in ("objective", "pwrss", "sigma", "logdet_L", "logdet_RX"):
        assert getattr(mapped, name) == pytest.approx(getattr(plain, name), rel=1e-9), name
    np.testing.assert_allclose(mapped.theta, theta, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(mapped.beta, plain.beta, rtol=1e-8)
    np.testing.assert_allclose(mapped.RX, plain.RX, rtol=1e-8, atol=1e-10 * np.abs(plain.RX).max())
    np.testing.assert_allclose(mapped.b[0], plain.b[0], rtol=1e-6, atol=1e-9 * np.abs(plain.b[0]).max())
    np.testing.assert_allclose(mapped.u[0], plain.u[0], rtol=1e-6, atol=1e-9 * np.abs(plain.u[0]).max())
    np.testing.assert_allclose(mapped.cond_var[0], plain.cond_var[0], rtol=1e-6,
                               atol=1e-9 * np.abs(plain.cond_var[0]).max())
