"""R's splines::bs and splines::ns bases: B-splines with interior knots at quantiles of the data, and the
natural cubic splines (second derivative 0 at the boundary knots) made from them.

Learned from the fitting data: the interior knots (quantiles of the present values, R's type 7) and
the boundary knots (their range). Outside the boundary knots bs() continues each basis function by its
Taylor polynomial at the boundary and ns() linearly, as R does, so new data gets R's values.
"""

from __future__ import annotations

import math

import numpy as np

from lmmcli.errors import DataError


def _knots(x: np.ndarray, n_interior: int, label: str) -> tuple[list[float], list[float]]:
    v = x[~np.isnan(x)]
    if len(v) == 0:
        raise DataError(f"{label}: no values to place knots at")
    probs = np.linspace(0.0, 1.0, n_interior + 2)[1:-1]
    return [float(q) for q in np.quantile(v, probs)], [float(v.min()), float(v.max())]


def learn_bs(x: np.ndarray, df: int, degree: int, label: str) -> dict:
    """bs(x, df, degree): df - degree interior knots (at least none) at quantiles of x."""
    knots, boundary = _knots(x, max(df - degree, 0), label)
    return {"knots": knots, "boundary": boundary, "degree": degree}


def learn_ns(x: np.ndarray, df: int, label: str) -> dict:
    """ns(x, df): df - 1 interior knots at quantiles of x."""
    knots, boundary = _knots(x, max(df - 1, 0), label)
    return {"knots": knots, "boundary": boundary}


def spline_design(all_knots: np.ndarray, x: np.ndarray, order: int, deriv: int = 0) -> np.ndarray:
    """splines::splineDesign: the len(all_knots) - order B-spline basis functions (or a derivative) at x,
    for x within the boundary knots (the right end included)."""
    from scipy.interpolate import BSpline

    k = order - 1
    nbasis = len(all_knots) - order
    out = np.empty((len(x), nbasis))
    for j in range(nbasis):
        c = np.zeros(nbasis)
        c[j] = 1.0
        out[:, j] = BSpline(all_knots, c, k, extrapolate=True)(x, nu=deriv)
    return out


def _all_knots(state: dict, order: int) -> np.ndarray:
    b0, b1 = state["boundary"]
    return np.array(sorted([b0] * order + list(state["knots"]) + [b1] * order))


def _evaluate(x: np.ndarray, state: dict, order: int, taylor_terms: int) -> np.ndarray:
    """Every basis function at x: inside the boundary as is, outside by the boundary's Taylor polynomial
    with taylor_terms terms (order for bs, 2 for ns: linear)."""
    t = _all_knots(state, order)
    b0, b1 = state["boundary"]
    out = np.full((len(x), len(t) - order), np.nan)
    inside = (x >= b0) & (x <= b1)
    out[inside] = spline_design(t, x[inside], order)
    for edge, rows in ((b0, x < b0), (b1, x > b1)):
        if rows.any():
            d = x[rows] - edge
            out[rows] = sum(spline_design(t, np.array([edge]), order, j) * (d[:, None] ** j) / math.factorial(j)
                            for j in range(taylor_terms))
    return out


def bs_basis(x: np.ndarray, state: dict) -> np.ndarray:
    """bs()'s columns (without the intercept column, R's default)."""
    order = state["degree"] + 1
    return _evaluate(x, state, order, order)[:, 1:]


def ns_basis(x: np.ndarray, state: dict) -> np.ndarray:
    """ns()'s columns: the cubic B-splines (first dropped) projected on the null space of their second
    derivatives at the two boundary knots, through the QR of that 2-row constraint (R's qr.qty)."""
    t = _all_knots(state, 4)
    basis = _evaluate(x, state, 4, 2)[:, 1:]
    const = spline_design(t, np.array(state["boundary"]), 4, 2)[:, 1:]
    Q, _ = np.linalg.qr(const.T, mode="complete")
    return basis @ Q[:, 2:]
