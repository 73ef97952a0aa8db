"""The closed-form gradient of the deviance's pieces (engine/gradient.py) against finite differences.

At lme4's theta for every reference case whose layout the closed form covers (one random term of any
size, or scalar crossed / nested terms), REML and ML, d logdet_L, d pwrss and d logdet_RX must equal
fourth-order central differences of PlsModel.deviance_parts to 1e-6 relative. Then: its users -- the
convergence check's derivatives and Satterthwaite's df -- against the finite-difference versions they
replace, in stored and in other units, and the layouts and boundary points it declines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import CASES, read_case_data
from lmmcli.design.design import build_design
from lmmcli.engine import convergence, gradient, pls
from lmmcli.fit import fit
from lmmcli.formula import parse_formula
from lmmcli.inference import satterthwaite

REL = 1e-6


def _model(case, reml):
    design = build_design(parse_formula(case["formula"]), read_case_data(case), case["factors"])
    return pls.PlsModel.from_rows(design.X, design.y, design.blocks, reml)


def _differences(model, theta) -> np.ndarray:
    """d (logdet_L, pwrss, logdet_RX) / d theta_i by the five-point central stencil (error O(h^4))."""
    out = []
    for i in range(len(theta)):
        h = 1e-3 * max(abs(theta[i]), 0.1)
        e = np.eye(len(theta))[i] * h
        f = [np.array(model.deviance_parts(theta + s * e)) for s in (2, 1, -1, -2)]
        out.append((-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h))
    return np.array(out)


COVERED = [c for c in CASES if c["id"] != "dyestuff2_singular"]      # that one's theta is 0: the boundary


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("case", COVERED, ids=[c["id"] for c in COVERED])
def test_gradient_equals_finite_differences(case, reml):
    model = _model(case, reml)
    assert gradient.available(model)
    theta = np.array(case["expected"]["theta"], dtype=float)
    g = gradient.at(model, theta)
    got = np.column_stack([g.d_logdet_L, g.d_pwrss, g.d_logdet_RX])
    want = _differences(model, theta)
    scale = np.abs(want).max(axis=0)
    np.testing.assert_allclose(got, want, rtol=REL, atol=REL * scale.max())
    assert (g.logdet_L, g.pwrss, g.logdet_RX) == pytest.approx(model.deviance_parts(theta), rel=1e-10)


def test_a_three_by_three_block_and_no_fixed_effects():
    rng = np.random.default_rng(3)
    n, groups = 600, 40
    df = pd.DataFrame({"g": rng.integers(0, groups, n).astype(str), "a": rng.normal(size=n),
                       "b": rng.normal(size=n)})
    df["y"] = rng.normal(size=n) + df["a"] * rng.normal(size=groups)[df["g"].astype(int)]
    design = build_design(parse_formula("y ~ 0 + (1 + a + b|g)"), df)
    model = pls.PlsModel.from_rows(design.X, design.y, design.blocks, True)
    theta = np.array([0.8, 0.3, -0.2, 0.6, 0.1, 0.4])
    g = gradient.at(model, theta)
    np.testing.assert_allclose(np.column_stack([g.d_logdet_L, g.d_pwrss]), _differences(model, theta)[:, :2],
                               rtol=REL, atol=1e-9)
    assert np.all(g.d_logdet_RX == 0)


def test_layouts_and_points_it_declines():
    df = read_case_data(next(c for c in CASES if c["id"] == "sleepstudy_slope"))
    df["half"] = (df["Days"] > 4).astype(str)
    design = build_design(parse_formula("Reaction ~ Days + (Days|Subject) + (1|half)"), df)
    vector_beside_scalar = pls.PlsModel.from_rows(design.X, design.y, design.blocks, True)
    assert not gradient.available(vector_beside_scalar)
    model = _model(next(c for c in CASES if c["id"] == "penicillin_crossed"), True)
    assert gradient.curvature(model, np.array([1.5, 0.0])) is None        # on the boundary
    assert gradient.curvature(model, np.array([1.5, 3.0])) is not None


@pytest.mark.parametrize("cid", ["sleepstudy_slope", "pastes_nested", "penicillin_crossed"])
def test_convergence_derivatives_equal_differences(cid):
    """Against Richardson-extrapolated differences of the objective: lme4's own step-1e-4 differences
    are only good to ~1e-5 in the gradient and ~1e-2 in the Hessian here (the objective's rounding)."""
    case = next(c for c in CASES if c["id"] == cid)
    model = _model(case, True)
    theta = np.array(case["expected"]["theta"], dtype=float)
    closed = convergence.closed_form_derivatives(model, theta, model.lower)
    assert closed.evaluations == 2 * len(theta) + 1
    assert not closed.bound.any()
    f = model.objective
    g = []
    for i in range(len(theta)):
        h = 1e-3 * max(abs(theta[i]), 0.1)
        e = np.eye(len(theta))[i] * h
        g.append((-f(theta + 2 * e) + 8 * f(theta + e) - 8 * f(theta - e) + f(theta - 2 * e)) / (12 * h))
    np.testing.assert_allclose(closed.gradient, g, rtol=1e-5, atol=1e-6)
    H = satterthwaite.hessian(f, theta)          # numDeriv's steps (10% of theta), Richardson-extrapolated
    np.testing.assert_allclose(closed.hessian, H, rtol=1e-5, atol=1e-6 * np.abs(H).max())


def _richardson_df(monkeypatch, fm):
    with monkeypatch.context() as m:
        m.setattr(gradient, "available", lambda model: False)
        return satterthwaite.satterthwaite_df(fm.model, fm.sol.theta, fm.sol.sigma, fm.vcov())


@pytest.mark.parametrize("cid", ["sleepstudy_slope", "sleepstudy_slope_ml", "gpa_cluster", "pastes_nested",
                                 "penicillin_crossed"])
def test_satterthwaite_df_equal_richardsons(monkeypatch, cases, cid):
    """Where the Newton step moved less than convergence.MOVE_TOL of the difference steps, the df come
    from the points around BOBYQA's end (measured: pastes 3.6e-6 apart, penicillin's fit, whose step is
    farther, takes its own points: 1e-9); 1e-6 before the rule, 1e-3 is lmerTest's agreement."""
    case = cases[cid]
    fm = fit(case["formula"], read_case_data(case), reml=case["reml"], factors=case["factors"])
    assert gradient.OriginalUnits.of(fm.model).curvature(fm.sol.theta) is not None
    got = satterthwaite.satterthwaite_df(fm.model, fm.sol.theta, fm.sol.sigma, fm.vcov())
    np.testing.assert_allclose(got, _richardson_df(monkeypatch, fm), rtol=2e-5)


def test_satterthwaite_df_in_other_units(monkeypatch, cases):
    """Reaction in millionths: the record is stored in other units (ScaledModel); the view maps the points back."""
    case = cases["sleepstudy_uncorrelated"]
    df = read_case_data(case)
    df["Reaction"] = df["Reaction"] * 1e-6
    df["Days"] = df["Days"] * 1e5
    fm = fit(case["formula"], df)
    assert type(fm.model).__name__ == "ScaledModel"
    assert gradient.OriginalUnits.of(fm.model).curvature(fm.sol.theta) is not None
    got = satterthwaite.satterthwaite_df(fm.model, fm.sol.theta, fm.sol.sigma, fm.vcov())
    np.testing.assert_allclose(got, _richardson_df(monkeypatch, fm), rtol=1e-6)


@pytest.mark.parametrize("cid", ["sleepstudy_slope", "penicillin_crossed", "pastes_nested"])
def test_forward_points_are_completed_to_the_central_curvature(cid):
    """The Newton step's first Hessian (forward differences, k + 1 solutions) is good to ~1e-4, and its
    points completed by the k minus ones give exactly the central Curvature a fresh model computes."""
    case = next(c for c in CASES if c["id"] == cid)
    model, fresh = _model(case, True), _model(case, True)
    theta = np.array(case["expected"]["theta"], dtype=float)
    rough = convergence.forward_derivatives(model, theta, model.lower)
    assert rough.evaluations == len(theta) + 1 and rough.forward is not None
    central = convergence.closed_form_derivatives(fresh, theta, fresh.lower)
    np.testing.assert_allclose(rough.gradient, central.gradient, rtol=1e-12, atol=1e-12 * np.abs(central.gradient).max())
    err = np.abs(rough.hessian - central.hessian).max() / np.abs(central.hessian).max()
    assert 1e-9 < err < 1e-3               # a real forward difference, and good enough for a Newton step
    done = convergence.closed_form_derivatives(model, theta, model.lower, rough.forward)
    np.testing.assert_allclose(done.hessian, central.hessian, rtol=1e-12, atol=1e-12 * np.abs(central.hessian).max())
    assert done.criterion == fresh.solve(theta).objective       # the objective, from the same full factor
    assert done.criterion == pytest.approx(model.objective(theta), rel=1e-11)   # BOBYQA's sums in another order


def test_the_solution_at_a_gradient_point_reuses_its_factor_unchanged():
    """PlsModel keeps the last solution and its factor's dense inverse: the solution with conditional
    variances after gradient.at equals a fresh model's."""
    case = next(c for c in CASES if c["id"] == "penicillin_crossed")
    model, fresh = _model(case, True), _model(case, True)
    theta = np.array(case["expected"]["theta"], dtype=float)
    gradient.at(model, theta)
    _, F = model.solve_factored(theta)
    assert F.inverse is not None                   # the gradient's inverse, kept for the variances
    got, want = model.solve(theta), fresh.solve(theta)
    np.testing.assert_array_equal(got.beta, want.beta)
    for a, b in zip(got.cond_var, want.cond_var):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert model.deviance_parts(theta) == pytest.approx(fresh.deviance_parts(theta), rel=1e-12)
