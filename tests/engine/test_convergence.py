"""lme4's checkConv on the objective's finite-difference gradient and Hessian, boundary-aware."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REF
from lmmcli.design.design import build_design
from lmmcli.engine import convergence, optimize
from lmmcli.engine.pls import PlsModel
from lmmcli.formula import parse_formula

R = json.loads((REF / "optimum" / "optimum.json").read_text())
H = np.array([[2.0, 0.5], [0.5, 1.0]])


def quad(center):
    c = np.asarray(center, dtype=float)
    return lambda t: float((np.asarray(t) - c) @ H @ (np.asarray(t) - c))


def test_derivatives_of_a_quadratic_are_exact():
    f = quad([0.5, -0.2])
    d = convergence.derivatives(f, np.array([0.7, 0.1]), np.array([0.0, -np.inf]))
    np.testing.assert_allclose(d.gradient, 2 * H @ [0.2, 0.3], atol=1e-8)
    np.testing.assert_allclose(d.hessian, 2 * H, atol=1e-5)
    assert not d.bound.any() and d.evaluations == 2 * 2 + 4 + 1


def test_one_sided_on_the_bound():
    """theta[0] = 0 on its bound: forward differences, never a negative theta."""
    seen = []
    f = quad([-0.5, 0.0])
    d = convergence.derivatives(lambda t: seen.append(t[0]) or f(t), np.array([0.0, 0.0]), np.array([0.0, -np.inf]))
    assert d.bound.tolist() == [True, False] and min(seen) >= 0.0
    np.testing.assert_allclose(d.gradient, 2 * H @ [0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(d.hessian, 2 * H, atol=1e-4)


@pytest.mark.parametrize("center,at,ok,text", [
    ([0.5, -0.2], [0.5, -0.2], True, None),                       # interior minimum
    ([0.5, -0.2], [0.51, -0.2], False, "max|grad|"),              # not at the minimum
    ([-0.5, 0.0], [0.0, -0.25], True, None),                      # minimum on the bound (KKT holds)
])
def test_check_on_quadratics(center, at, ok, text):
    f = quad(center)
    res = convergence.check(convergence.derivatives(f, np.array(at), np.array([0.0, -np.inf])))
    assert res.converged is ok
    assert (text is None and not res.messages) or any(text in m for m in res.messages)


def test_objective_falling_off_the_bound_is_reported():
    f = quad([0.5, 0.0])
    res = convergence.check(convergence.derivatives(f, np.array([0.0, 0.0]), np.zeros(2)))
    assert not res.converged and "decreases off the boundary" in res.messages[0]


def test_negative_curvature_is_reported():
    f = lambda t: float(t[0] ** 2 - t[1] ** 2)
    res = convergence.check(convergence.derivatives(f, np.zeros(2), np.full(2, -np.inf)))
    assert not res.converged and any("negative eigenvalue" in m for m in res.messages)


def test_singular_hessian_is_reported():
    f = lambda t: float((t[0] + t[1]) ** 2)
    res = convergence.check(convergence.derivatives(f, np.zeros(2), np.full(2, -np.inf)))
    assert any("singular" in m for m in res.messages)


def test_lme4_end_point_fails_the_check_as_in_lme4():
    """At lme4's own end point on the 3 x 3 case, lme4 warns max|grad| = 0.00338; so do we.

    lme4 names "component 1" whatever the component (its which.max is of the scalar maximum); we name
    the component that has it."""
    df = pd.read_csv(REF / "optimum" / "block3_stops_short.csv")
    design = build_design(parse_formula("y ~ x1 + x2 + (1 + x1 + x2 | g)"), df)
    model = PlsModel.from_rows(design.X, design.y, design.blocks, True)
    theta = np.array(R["block3_stops_short"]["lme4_theta"])
    res = convergence.check(convergence.derivatives(model.objective, theta, model.lower))
    assert not res.converged
    assert res.max_grad == pytest.approx(0.00338219, rel=0.05)
    assert "max|grad| = 0.00338" in res.messages[0]
    assert any("large eigenvalue ratio" in m for m in res.messages)       # lme4's second message


def test_fit_theta_attaches_the_check():
    df = pd.read_csv(REF / "data" / "sleepstudy.csv")
    design = build_design(parse_formula("Reaction ~ Days + (Days|Subject)"), df)
    opt = optimize.fit_theta(PlsModel.from_rows(design.X, design.y, design.blocks, True))
    assert opt.check is not None and opt.check.converged and opt.check.max_grad < 1e-4
