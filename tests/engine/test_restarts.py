"""fit_theta's restarts: from its own end point, and off the boundary, against R's best optima.

tests/reference/optimum/optimum.json (made by optimum.R there, lme4 1.1-31): for each case lme4's own
fit and the best optimum of 30 random starts with restarts, found with lme4's devfun.
  block3_stops_short  a 3 x 3 block where one BOBYQA run stops ~1e-3 short (lme4 stops 2.6e-3 short
                      and warns max|grad| = 0.0034)
  block3_boundary     a 3 x 3 block whose run ends with a diagonal theta at 0; the optimum (0.21 lower)
                      has it off the boundary with the column's sign flipped
  orange              circumference ~ age + (age | Tree): lme4 ends 0.095 above the optimum
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REF
from lmmcli.design.design import build_design
from lmmcli.engine import gradient, newton, optimize
from lmmcli.engine.pls import PlsModel
from lmmcli.fit import fit
from lmmcli.formula import parse_formula

OPT = REF / "optimum"
R = json.loads((OPT / "optimum.json").read_text())
BLOCK3 = "y ~ x1 + x2 + (1 + x1 + x2 | g)"
CASES = {"block3_stops_short": BLOCK3, "block3_boundary": BLOCK3, "orange": "circumference ~ age + (age | Tree)"}


def _frame(cid):
    return pd.read_csv(OPT / f"{cid}.csv")


def _model(cid):
    design = build_design(parse_formula(CASES[cid]), _frame(cid))
    return PlsModel.from_rows(design.X, design.y, design.blocks, True)


@pytest.mark.parametrize("cid", list(CASES))
def test_objective_agrees_with_lme4_at_its_best_theta(cid):
    assert _model(cid).objective(np.array(R[cid]["best_theta"])) == pytest.approx(R[cid]["best_reml"], abs=1e-7)


@pytest.mark.parametrize("cid", list(CASES))
def test_fit_reaches_the_best_optimum(cid):
    fm = fit(CASES[cid], _frame(cid))
    assert fm.sol.objective <= R[cid]["best_reml"] + 1e-6
    assert fm.sol.objective < R[cid]["lme4_reml"] - 1e-3         # lme4 itself stops short on all three
    np.testing.assert_allclose(fm.sol.theta, R[cid]["best_theta"], atol=2e-3 * np.abs(R[cid]["best_theta"]).max())
    assert fm.opt.converged and not any("converge" in w for w in fm.result().warnings)


def test_one_run_stops_short_and_the_restart_finishes():
    opt = optimize.fit_theta(_model("block3_stops_short"))
    first, rest = opt.runs[0], opt.runs[1:]
    assert first.kind == "initial" and first.fmin > R["block3_stops_short"]["best_reml"] + 5e-4
    assert rest and rest[0].kind == "restart" and opt.fmin <= R["block3_stops_short"]["best_reml"] + 1e-6
    # the last restart is the one that found no more than RESTART_RTOL
    assert rest[-1].fmin >= opt.fmin - 1e-8 * abs(opt.fmin)
    assert opt.feval == sum(r.feval for r in opt.runs)


def test_moving_off_the_boundary_finds_the_interior_optimum():
    opt = optimize.fit_theta(_model("block3_boundary"))
    kinds = [r.kind for r in opt.runs]
    on_edge = min(r.fmin for r in opt.runs[:kinds.index("off-boundary")])
    assert on_edge > R["block3_boundary"]["best_reml"] + 0.1          # restarts alone stay on the edge
    assert opt.fmin <= R["block3_boundary"]["best_reml"] + 1e-6


def test_runs_are_reported_in_the_result():
    res = fit(CASES["block3_stops_short"], _frame("block3_stops_short")).result()
    runs = res.optimizer["runs"]
    assert runs[0]["kind"] == "initial" and runs[1]["kind"] == "restart"
    assert res.optimizer["evaluations"] == sum(r["evaluations"] for r in runs)
    assert res.optimizer["max_grad"] < 2e-3


def _sleepstudy_model(formula="Reaction ~ Days + (Days|Subject)"):
    df = pd.read_csv(REF / "data" / "sleepstudy.csv")
    design = build_design(parse_formula(formula), df)
    return PlsModel.from_rows(design.X, design.y, design.blocks, True)


def test_a_point_the_newton_step_shows_stationary_is_not_restarted():
    """sleepstudy: the closed-form Newton steps from the first run's end reach a strict interior minimum
    (newton.stationary_polish), so no restart runs; a restart from there (the rule before) lowers the
    objective by no more than its rounding noise (measured 2.6e-11), and lme4's 612.10 stop is not
    where it ends: Subject's intercept variance is the optimum's 612.09."""
    model = _sleepstudy_model()
    opt = optimize.fit_theta(model)
    assert [r.kind for r in opt.runs] == ["initial"] and opt.newton.steps >= 1
    again = optimize.minimize_theta(model.objective, opt.theta, model.lower, step=optimize.local_step(opt.theta),
                                    tol=optimize.fit_tol(model.n))
    assert again.fmin >= opt.fmin - newton.NEWTON_NOISE * (abs(opt.fmin) + model.n)
    fm = fit("Reaction ~ Days + (Days|Subject)", pd.read_csv(REF / "data" / "sleepstudy.csv"))
    assert round(fm.covariances()[0][0, 0], 2) == 612.09


def test_a_model_without_the_closed_form_gradient_still_restarts():
    """(Days|Subject) beside (1|Days): no closed-form gradient (engine.gradient.available), so no Newton
    step can show the first run's end stationary, and the restarts run as before."""
    model = _sleepstudy_model("Reaction ~ Days + (Days|Subject) + (1|Days)")
    assert not gradient.available(model)
    opt = optimize.fit_theta(model)
    assert [r.kind for r in opt.runs][:2] == ["initial", "restart"]


def test_snap_to_boundary():
    """lme4's check.boundary: a theta within BOUNDARY_TOL of 0 is set to 0 when that lowers the objective."""
    fun = lambda t: float(t[0] + (t[1] - 1) ** 2)
    opt = optimize.OptSummary(np.ones(2), np.zeros(2), np.array([5e-6, 1.0]), fun([5e-6, 1.0]), 1,
                              "x", "FTOL_REACHED", True)
    snapped = optimize._snap_to_boundary(fun, opt, np.zeros(2))
    assert snapped.theta[0] == 0.0 and snapped.fmin == 0.0
    rising = lambda t: float(-t[0] + (t[1] - 1) ** 2)
    opt = optimize.OptSummary(np.ones(2), np.zeros(2), np.array([5e-6, 1.0]), rising([5e-6, 1.0]), 1,
                              "x", "FTOL_REACHED", True)
    assert optimize._snap_to_boundary(rising, opt, np.zeros(2)) is opt
