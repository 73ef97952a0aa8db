"""minimize_theta: BOBYQA with bounds, its bookkeeping, and its cost on the reference cases.

Reference objectives are lme4 1.1-31's (tests/reference/expected/*.json); ours may be lower, never
higher by more than 1e-6 (the reference checker allows 1e-4). Evaluation counts are regression
guards for the tolerances in optimize.py (measured: sleepstudy (Days|Subject) takes 62, lme4 ~ 40-60).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import CASE_IDS, CASES, read_case_data
from lmmcli import optimize
from lmmcli.design import build_design
from lmmcli.formula import parse_formula
from lmmcli.pls import PlsModel


def _model(case):
    design = build_design(parse_formula(case["formula"]), read_case_data(case), case["factors"])
    return PlsModel(design.X, design.y, design.blocks, case["reml"])


@pytest.mark.parametrize("cid", CASE_IDS)
def test_reaches_lme4_optimum(cid):
    case = next(c for c in CASES if c["id"] == cid)
    exp = case["expected"]
    model = _model(case)
    opt = optimize.minimize_theta(model.objective, model.theta0, model.lower)
    want = exp["reml_criterion"] if exp["reml"] else exp["deviance"]
    assert opt.converged
    assert opt.fmin <= want + 1e-6
    assert opt.fmin == pytest.approx(model.objective(opt.theta))
    assert np.all(opt.theta >= model.lower)


@pytest.mark.parametrize("cid,max_evals", [("sleepstudy_slope", 80), ("sleepstudy_intercept", 25),
                                           ("penicillin_crossed", 70), ("pastes_nested", 50)])
def test_evaluation_budget(cid, max_evals):
    model = _model(next(c for c in CASES if c["id"] == cid))
    opt = optimize.minimize_theta(model.objective, model.theta0, model.lower)
    assert opt.feval <= max_evals


@pytest.mark.parametrize("center,lower,want", [
    ([0.5, -0.3], [0.0, -np.inf], [0.5, -0.3]),       # interior minimum
    ([-0.5, 2.0], [0.0, -np.inf], [0.0, 2.0]),        # first parameter pinned at its bound
])
def test_bounded_quadratic(center, lower, want):
    c = np.array(center)
    opt = optimize.minimize_theta(lambda t: float(((t - c) ** 2 * [1.0, 3.0]).sum()), np.array([1.0, 0.0]), lower)
    np.testing.assert_allclose(opt.theta, want, atol=1e-5)
    assert opt.converged and opt.theta[0] >= 0.0


def test_no_parameters():
    opt = optimize.minimize_theta(lambda t: 7.0, np.zeros(0), np.zeros(0))
    assert (opt.fmin, opt.feval, opt.return_code, opt.converged) == (7.0, 1, "no parameters", True)


def test_infinite_values_are_avoided():
    """An objective that is +inf where the factor fails (theta > 2 here) still gives the finite optimum."""
    fun = lambda t: np.inf if t[0] > 2 else (t[0] - 1.5) ** 2
    opt = optimize.minimize_theta(fun, np.array([1.0]), np.array([0.0]))
    assert opt.theta[0] == pytest.approx(1.5, abs=1e-5) and np.isfinite(opt.fmin)


def test_maxeval_is_reported():
    opt = optimize.minimize_theta(lambda t: float(((t - 0.3) ** 2).sum()), np.ones(3), np.zeros(3), maxeval=5)
    assert opt.feval == 5 and not opt.converged
    assert opt.return_code == "MAXEVAL_REACHED" and "maximum of 5" in opt.messages[0]
