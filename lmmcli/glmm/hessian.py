"""The Hessian of the stage-2 deviance in (theta, beta) by differences, and a last Newton step with it.

glmer's standard errors come from the Hessian of its deviance at the optimum by central differences
(lme4's deriv12: 2k + 2 k(k-1) evaluations for k parameters, 72 of VerbAgg's ~175). The deviance is
nearly quadratic in whitened beta (stage 2's coordinates, with unit curvature), so its beta-beta
cross terms need only forward differences (k_beta (k_beta - 1) / 2 evaluations fewer); the pairs
with a theta stay central. The same differences give the gradient, so one Newton step from the
optimizer's end point costs one evaluation more: BOBYQA may stop at a looser tolerance and the step
finishes the job. The standard errors move with theta to first order (cbpp: 1.5e-3 relative for a
step of 2e-4 in deviance), which is why the Hessian is taken at BOBYQA's end point, within ~1e-7
of the optimum, and not at an earlier one.
"""

from __future__ import annotations

import numpy as np

HESS_STEP = 1e-3          # finite-difference step in whitened beta units and relative theta units


def fd_steps(par: np.ndarray, k: int) -> np.ndarray:
    """Steps per parameter: relative for the k thetas (at least HESS_STEP * 0.1), absolute for whitened beta."""
    return np.concatenate([HESS_STEP * np.maximum(np.abs(par[:k]), 0.1), np.full(len(par) - k, HESS_STEP)])


def derivatives(f, x: np.ndarray, h: np.ndarray, f0: float, central: int):
    """(gradient, Hessian) of f at x by differences with steps h, given f0 = f(x).

    The gradient and the diagonal are central (2k evaluations). A cross term of the first `central`
    parameters is central, from x +- (h_i e_i + h_j e_j) (2 evaluations, error O(h^2)); the others
    forward, from x + h_i e_i + h_j e_j (1 evaluation, error O(h) times the third derivatives).
    The stage-2 deviance is nearly quadratic in whitened beta, so central = k (the thetas) loses
    nothing measurable against all-central differences (stored cases: SEs within 4e-5 of them)
    and saves a third of the evaluations when beta is long."""
    n = len(x)
    E = np.diag(h)
    fp = np.array([f(x + E[i]) for i in range(n)])
    fm = np.array([f(x - E[i]) for i in range(n)])
    g = (fp - fm) / (2.0 * h)
    H = np.diag((fp - 2.0 * f0 + fm) / h ** 2)
    for i in range(n):
        for j in range(i):
            if j < central:
                s = f(x + E[i] + E[j]) + f(x - E[i] - E[j]) - fp[i] - fm[i] - fp[j] - fm[j] + 2.0 * f0
                H[i, j] = H[j, i] = s / (2.0 * h[i] * h[j])
            else:
                H[i, j] = H[j, i] = (f(x + E[i] + E[j]) - fp[i] - fp[j] + f0) / (h[i] * h[j])
    return g, H


def se_derivatives(f, x: np.ndarray, k: int, f0: float):
    """(gradient, Hessian) for the standard errors: central in pairs with a theta, forward in beta pairs."""
    return derivatives(f, x, fd_steps(x, k), f0, central=k)


def newton_step(g: np.ndarray, H: np.ndarray):
    """-H^{-1} g, or None when H is not positive definite."""
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    return -np.linalg.solve(L.T, np.linalg.solve(L, g))


def polish(f, x: np.ndarray, fx: float, k: int, lower: np.ndarray):
    """(x, f(x), H): the SE Hessian at an optimizer's end point x, and one Newton step from there if it
    stays within the bounds and lowers f."""
    x, fx, _, H = polish_derivatives(f, x, fx, k, lower)
    return x, fx, H


def polish_derivatives(f, x: np.ndarray, fx: float, k: int, lower: np.ndarray):
    """polish, and the gradient at the returned point by the same differences (g + H step after the
    Newton step): (x, f(x), g, H), for the convergence check."""
    g, H = se_derivatives(f, x, k, fx)
    step = newton_step(g, H)
    if step is not None and np.all(x[:k] + step[:k] >= lower):
        f_new = f(x + step)
        if f_new <= fx:
            return x + step, f_new, g + H @ step, H
    return x, fx, g, H
