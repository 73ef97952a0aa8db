"""Data-dependent transformations of a predictor, as R computes them in model.frame: scale(x), poly(x, k)
(orthogonal or raw) and R's contrast matrices (contr.treatment, contr.sum, contr.helmert, contr.poly).

A transformation learns its coefficients once from the fitting data (the rows where its argument is
present, before incomplete rows are dropped, as R evaluates it) and keeps them, so new data gets the
same columns (R's makepredictcall).
"""

from __future__ import annotations

import numpy as np

from lmmcli.errors import DataError, ModelSpecError

CONTRASTS = ("treatment", "sum", "helmert", "poly")


# -- scale(x) --------------------------------------------------------------------------------
def learn_scale(x: np.ndarray) -> tuple[float, float]:
    """scale()'s centre and scale: the mean and sd of the present values (an sd of 0 scales by 1)."""
    v = x[~np.isnan(x)]
    if len(v) == 0:
        return 0.0, 1.0
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return float(np.mean(v)), sd if sd > 0 else 1.0


# -- poly(x, k) ------------------------------------------------------------------------------
def learn_poly(x: np.ndarray, degree: int, label: str) -> dict:
    """poly()'s three-term recurrence coefficients (R's attr(, "coefs"): alpha and norm2) from the data.

    The monic polynomials orthogonal over the data (Stieltjes): p0 = 1, p1 = x - alpha_1,
    p_{i+1} = (x - alpha_{i+1}) p_i - (norm2_{i+1} / norm2_i) p_{i-1}; R normalises each by its norm.
    """
    if np.isnan(x).any():
        raise DataError(f"{label}: missing values are not allowed in 'poly'",
                        hint="remove the rows where its argument is missing")
    if degree < 1:
        raise ModelSpecError(f"{label}: 'degree' must be at least 1")
    if degree >= len(np.unique(x)):
        raise DataError(f"{label}: 'degree' must be less than number of unique points")
    xbar = float(np.mean(x))
    xc = x - xbar                     # centred first, as R does, for accuracy
    alpha, norm2 = [], [1.0, float(len(x))]
    p_prev, p = np.zeros_like(x), np.ones_like(x)
    for i in range(degree):
        a = float(np.sum(xc * p * p) / norm2[-1])
        alpha.append(a + xbar)
        p_prev, p = p, (xc - a) * p - (norm2[-1] / norm2[-2]) * p_prev if i else xc - a
        norm2.append(float(np.sum(p * p)))
    return {"alpha": alpha, "norm2": norm2}


def poly_basis(x: np.ndarray, coefs: dict) -> np.ndarray:
    """The orthogonal polynomial columns of x for learned coefs (R's predict of a poly basis)."""
    alpha, norm2 = coefs["alpha"], coefs["norm2"]
    degree = len(alpha)
    Z = np.ones((len(x), degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    return Z[:, 1:] / np.sqrt(np.asarray(norm2[2:]))[None, :]


def raw_poly(x: np.ndarray, degree: int) -> np.ndarray:
    """poly(x, k, raw = TRUE): x, x^2, ..., x^k."""
    return np.column_stack([x ** k for k in range(1, degree + 1)])


# -- contrasts -------------------------------------------------------------------------------
def contrast_matrix(kind: str, levels: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """(column suffixes, k x (k-1) matrix) of R's contr.<kind> for these levels."""
    k = len(levels)
    if kind == "treatment":
        return list(levels[1:]), np.eye(k)[:, 1:]
    if kind == "sum":
        return [str(j) for j in range(1, k)], np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
    if kind == "helmert":
        C = np.zeros((k, k - 1))
        for j in range(k - 1):
            C[:j + 1, j] = -1.0
            C[j + 1, j] = j + 1
        return [str(j) for j in range(1, k)], C
    if kind == "poly":
        scores = np.arange(1.0, k + 1)
        names = [".L", ".Q", ".C"] + [f"^{j}" for j in range(4, k)]
        return names[:k - 1], poly_basis(scores, learn_poly(scores, k - 1, "contr.poly"))
    raise ModelSpecError(f"unknown contrasts '{kind}'", hint="use one of " + ", ".join(CONTRASTS))
