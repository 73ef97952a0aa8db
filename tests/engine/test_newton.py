"""The Newton end step (newton.newton_polish): the same problem in another row order or other units
lands on the same theta, to ~noise / curvature instead of BOBYQA's ~sqrt(noise).

Measured before the step (sleepstudy, Days|Subject): theta 1.3e-6 apart between row orders, 3.3e-6
between Reaction and Reaction * 1e-9; after it, 4e-13 and 9e-13.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REF
from lmmcli.engine import convergence, newton, optimize
from lmmcli.fit import fit

SLEEP = "Reaction ~ Days + (Days|Subject)"


def _shuffled(df, seed=1):
    return df.iloc[np.random.default_rng(seed).permutation(len(df))].reset_index(drop=True)


def _crossed():
    """Crossed and nested scalar terms (the closed form's other layout)."""
    rng = np.random.default_rng(7)
    n, ns, nd = 1500, 300, 120
    s, d = rng.integers(0, ns, n), rng.integers(0, nd, n)
    dept = rng.integers(0, 6, nd)[d]
    y = 0.4 * rng.standard_normal(ns)[s] + 0.6 * rng.standard_normal(nd)[d] + 0.2 * rng.standard_normal(6)[dept] \
        + rng.standard_normal(n)
    return pd.DataFrame({"y": y, "s": s.astype(str), "d": d.astype(str), "dept": dept.astype(str)})


CASES = [(SLEEP, lambda: pd.read_csv(REF / "data" / "sleepstudy.csv")),
         ("y ~ 1 + (1|s) + (1|d) + (1|dept)", _crossed)]


@pytest.mark.parametrize("formula,data", CASES)
def test_row_order_does_not_move_theta(formula, data):
    df = data()
    a, b = fit(formula, df), fit(formula, _shuffled(df))
    np.testing.assert_allclose(b.sol.theta, a.sol.theta, rtol=1e-10)
    assert a.opt.newton is not None and a.opt.newton.steps >= 1


def test_units_do_not_move_theta(sleepstudy):
    a = fit(SLEEP, sleepstudy)
    for c in (1e-9, 1e9):
        np.testing.assert_allclose(fit(SLEEP, sleepstudy.assign(Reaction=sleepstudy.Reaction * c)).sol.theta,
                                   a.sol.theta, rtol=1e-10)


def test_the_step_lowers_the_gradient_and_never_raises_the_objective(sleepstudy):
    fm = fit(SLEEP, sleepstudy)
    assert fm.opt.check.max_grad < 1e-8          # measured 3e-13; BOBYQA alone stops at 3.4e-5
    assert fm.opt.newton.gain >= -newton.NEWTON_NOISE * (abs(fm.opt.fmin) + 180)


def test_no_step_without_a_positive_definite_hessian():
    d = convergence.Derivatives(np.ones(2), np.ones(2), -np.eye(2), np.zeros(2, bool), 0)
    assert newton._newton_step(d) is None


def test_boundary_thetas_are_set_to_zero_and_the_rest_polished():
    """A theta within BOUNDARY_TOL of 0 goes to 0 when the objective stays within noise; the others
    take Newton steps by differences of the objective."""
    fun = lambda t: float((t[0] - 0.3) ** 2 + 2 * (t[1] + 0.1) ** 2 + 1e-9 * t[2] + 1.0)
    x = np.array([0.3 + 1e-5, -0.1 - 2e-5, 2e-6])
    opt = optimize.OptSummary(x, np.array([0.0, -np.inf, 0.0]), x, fun(x), 1, "x", "FTOL_REACHED", True)
    out = newton._polish_on_boundary(fun, opt, 1e-12, optimize.BOUNDARY_TOL)
    assert out.theta[2] == 0.0
    np.testing.assert_allclose(out.theta[:2], [0.3, -0.1], atol=1e-9)
    assert out.fmin < opt.fmin and out.newton.steps >= 1
