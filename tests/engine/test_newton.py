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


def _forward(theta, H, g):
    """Forward-difference Derivatives with Hessian H and gradient g (their points are not needed here)."""
    return convergence.Derivatives(np.asarray(theta, float), np.asarray(g, float), np.asarray(H, float),
                                   np.zeros(len(theta), bool), len(theta) + 1, forward=("center", ["plus"]))


class _Model:
    lower = np.zeros(2)


def test_forward_points_are_completed_only_when_the_step_stays_near(monkeypatch):
    """Within MOVE_TOL of the difference steps the forward points become central ones at the same
    point (closed_form_derivatives with them as known); farther, d is kept (the next point takes its own)."""
    from lmmcli.engine import gradient

    calls = []
    central = convergence.Derivatives(np.ones(2), np.zeros(2), np.eye(2), np.zeros(2, bool), 5)
    monkeypatch.setattr(convergence, "closed_form_derivatives",
                        lambda model, theta, lower, known: calls.append(known) or central)
    theta = np.array([1.0, 2.0])
    h = gradient.STEP * theta
    near = _forward(theta, np.eye(2), 0.5 * convergence.MOVE_TOL * h)
    far = _forward(theta, np.eye(2), 2.0 * convergence.MOVE_TOL * h)
    monkeypatch.setattr(gradient, "steps", lambda model, t: gradient.STEP * np.abs(t))
    assert newton._completed_if_near(_Model(), near, np.zeros(2)) is central
    assert calls == [near.forward]
    assert newton._completed_if_near(_Model(), far, np.zeros(2)) is far


def test_a_close_bobyqa_end_costs_2k_plus_2_solutions(sleepstudy):
    """(Days||Subject): BOBYQA ends 0.0085 of the difference steps from the optimum, so the forward
    points are completed there (k + 1 + k) and the Newton point takes one more solution; the next step
    (~1e-13 of theta) is below NEGLIGIBLE and not taken."""
    fm = fit("Reaction ~ Days + (Days||Subject)", sleepstudy)
    k = len(fm.opt.theta)
    assert fm.opt.newton.solutions == 2 * k + 2 and fm.opt.newton.steps == 1
    assert fm.opt.check.max_grad < 1e-8


def test_a_far_bobyqa_end_gets_central_differences_at_the_newton_point(sleepstudy):
    """(Days|Subject): BOBYQA ends 0.07 of the steps away: forward (k + 1), central at the new point
    (2k + 1), and the second step's point (1): 3k + 3."""
    fm = fit(SLEEP, sleepstudy)
    k = len(fm.opt.theta)
    assert fm.opt.newton.solutions == 3 * k + 3 and fm.opt.newton.steps == 2
