"""The inverse of a profile's zeta(x), as R's backSpline(interpSpline(x, zeta)) (R's splines package).

lme4's confint() reads an interval's ends off this inverse at the normal quantiles: a natural
interpolating cubic spline of zeta over the profile points, inverted piecewise.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline


def back_spline(par, zeta):
    """Piecewise-cubic inverse of the natural interpolating spline of zeta(par): (knots, coefficients).

    On each interval the inverse matches the values and the reciprocal slopes at both ends (cubic
    Hermite); the two end intervals are quadratic (or linear), as R's backSpline makes them.
    """
    fwd = CubicSpline(par, zeta, bc_type="natural")
    a, k = np.asarray(zeta, float), np.asarray(par, float)
    slope = 1.0 / fwd(k, 1)
    nk = len(k)
    ad, kd = np.diff(a), np.diff(k)
    coef = np.zeros((nk - 1, 4))
    coef[:, 0], coef[:, 1] = k[:-1], slope[:-1]
    for i in range(nk - 1):
        A = np.array([[ad[i] ** 2, ad[i] ** 3], [2 * ad[i], 3 * ad[i] ** 2]])
        coef[i, 2:] = np.linalg.solve(A, [kd[i] - ad[i] * slope[i], slope[i + 1] - slope[i]])
    if nk > 2:
        coef[0, 3] = coef[-1, 3] = 0.0
        coef[0, 1:3] = np.linalg.solve([[ad[0], ad[0] ** 2], [1.0, 2 * ad[0]]], [kd[0], slope[1]])
        coef[-1, 2] = (kd[-1] - ad[-1] * coef[-1, 1]) / ad[-1] ** 2
    if coef[0, 2] > 0:
        coef[0, 1:3] = kd[0] / ad[0], 0.0
    if coef[-1, 2] < 0:
        coef[-1, 1:3] = kd[-1] / ad[-1], 0.0
    return a, coef


def predict_back(knots, coef, z) -> float:
    """The inverse at z; NaN outside the knots (the profile did not get that far)."""
    if not knots[0] <= z <= knots[-1]:
        return np.nan
    i = max(int(np.searchsorted(knots, z, side="left")) - 1, 0)
    d = z - knots[i]
    c = coef[i]
    return float(c[0] + d * (c[1] + d * (c[2] + d * c[3])))
