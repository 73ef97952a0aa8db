"""scaling.py: fits with values ~1e9 or ~1e-9 give the same answer, on the original scale.

Reference: the unscaled sleepstudy fit (itself checked against lme4 in test_fit.py). Tolerances: the
optimum is flat, so theta-dependent numbers agree to ~1e-6 relative between parametrisations; we ask 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.engine import scaling
from lmmcli.fit import fit

F = "Reaction ~ Days + (Days|Subject)"


def summary(fm, cy=1.0, cx=1.0, shift=0.0):
    """Numbers of a fit mapped back to the reference units (y divided by cy, x by cx, y shifted by shift)."""
    r = fm.result()
    b0, b1 = (fe.estimate for fe in r.fixed_effects)
    se1 = r.fixed_effects[1].std_error
    sds = [vc.sd for vc in r.variance_components]
    return np.array([(b0 - shift) / cy, b1 * cx / cy, se1 * cx / cy, sds[0] / cy, sds[1] * cx / cy, sds[2] / cy,
                     r.correlations[0].correlation])


@pytest.fixture(scope="module")
def base(sleepstudy):
    return summary(fit(F, sleepstudy))


@pytest.mark.parametrize("cy, cx, shift", [
    (1e9, 1, 0), (1e-9, 1, 0), (1, 1e9, 0), (1, 1e-9, 0), (1e9, 1e-9, 0), (-1e9, 1, 0),
    (1, 1, 1e9), (1e-9, 1, 1e-3), (1e9, 1e9, 1e12),
])
def test_extreme_magnitudes_fit_to_the_same_answer(sleepstudy, base, cy, cx, shift):
    df = sleepstudy.assign(Reaction=sleepstudy.Reaction * cy + shift, Days=sleepstudy.Days * cx)
    fm = fit(F, df)
    got = summary(fm, cy, cx, shift)
    got[[2, 3, 4, 5]] = np.abs(got[[2, 3, 4, 5]])   # standard errors and sds are positive on any scale
    np.testing.assert_allclose(got[:6], base[:6], rtol=1e-5)
    assert got[6] == pytest.approx(base[6], abs=2e-5)   # a correlation: absolute (the optimum is flat in it)
    assert fm.opt.converged and not fm.is_singular()


def test_reference_data_is_not_rescaled(cases):
    """Moderate numbers take the plain path: lme4's reference results are not touched."""
    from conftest import read_case_data
    from lmmcli.design.design import build_design
    from lmmcli.formula import parse_formula

    for c in cases.values():
        d = build_design(parse_formula(c["formula"]), read_case_data(c), c["factors"])
        assert scaling.choose_scaling(d.X, d.y, d.blocks) is None, c["id"]


@pytest.mark.parametrize("formula, reml", [(F, True), (F, False), ("Reaction ~ Days + (Days||Subject)", True),
                                           ("Reaction ~ 0 + Days + (1|Subject)", True)])
def test_mapping_back_is_exact(sleepstudy, monkeypatch, formula, reml):
    """Force rescaling of a moderate problem: every piece of the solution must equal the plain solve at the
    same theta (the formulas in scaling.py's docstring)."""
    plain = fit(formula, sleepstudy, reml=reml)
    monkeypatch.setattr(scaling, "FAR", 1.0 + 1e-12)      # any scale != 1 triggers rescaling
    scaled = fit(formula, sleepstudy, reml=reml)
    assert scaled.theta_scaled is not None
    ref = scaled.model.solve(scaled.sol.theta)              # the plain engine at the mapped-back theta
    s = scaled.sol
    for name in ("objective", "pwrss", "sigma", "logdet_L", "logdet_RX"):
        assert getattr(s, name) == pytest.approx(getattr(ref, name), rel=1e-9), name
    np.testing.assert_allclose(s.beta, ref.beta, rtol=1e-8)
    np.testing.assert_allclose(s.RX, ref.RX, rtol=1e-8, atol=1e-10 * np.abs(ref.RX).max())
    for a, b in zip(s.b, ref.b):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9 * np.abs(b).max())
    for a, b in zip(s.cond_var, ref.cond_var):
        np.testing.assert_allclose(a, b, rtol=1e-7)
    assert scaled.sol.objective == pytest.approx(plain.sol.objective, abs=1e-6)
