"""lmmcli.inference.backspline: the inverse of an interpolating spline, as R's backSpline(interpSpline(x, y))."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.inference.backspline import back_spline, predict_back


@pytest.mark.parametrize("f,finv,x,tol", [
    (lambda x: (x - 3.0) / 2.0, lambda z: 3.0 + 2.0 * z, np.linspace(-2.0, 8.0, 21), 1e-12),  # linear: exact
    (np.sinh, np.arcsinh, np.linspace(-2.5, 2.5, 21), 2e-3),                                  # curved: close
])
def test_back_spline_inverts_zeta(f, finv, x, tol):
    knots, coef = back_spline(x, f(x))
    for z in (f(x[3]) + 0.1, 0.3, f(x[-4]) - 0.05):
        assert predict_back(knots, coef, z) == pytest.approx(finv(z), abs=tol)
    assert np.isnan(predict_back(knots, coef, f(x[-1]) + 1.0))   # beyond the profile: no value
