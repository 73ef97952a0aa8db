"""Is the optimum an optimum? lme4's checkConv: the gradient and Hessian of the objective at the end point.

After the fit, lme4 (`optwrap` -> `deriv12`, then `checkConv`) takes central finite differences of the
profiled objective in theta (step 1e-4) and warns when
  - the largest min(|scaled gradient|, |gradient|) exceeds 2e-3, the scaled gradient being R^-T g for
    H = R'R ("Model failed to converge with max|grad| = ..."), or
  - the Hessian has eigenvalues below -1e-6 (not a minimum), is numerically singular, or is
    ill-conditioned ("nearly unidentifiable").
lme4 skips both checks for a singular fit. Here the check is boundary-aware instead: a theta on its
lower bound of 0 is differenced one-sidedly, its gradient only has to point into the feasible side
(g_i >= -tol: the objective rises when it moves off the bound), and the Hessian is judged on the free
parameters only -- the conditions of a minimum on a bound (Karush-Kuhn-Tucker). Where the engine has the
gradient in closed form (engine.gradient) and no theta is near its bound, the gradient is exact and the
Hessian is its central differences (2k + 1 solutions instead of lme4's 2k^2 + 1 evaluations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DELTA = 1e-4          # lme4's deriv12 step
GRAD_TOL = 2e-3       # lme4's check.conv.grad tol
HESS_TOL = 1e-6       # lme4's check.conv.hess tol


@dataclass
class Derivatives:
    """Finite-difference gradient and Hessian of the objective at theta; `bound` marks thetas held at 0."""

    theta: np.ndarray
    gradient: np.ndarray
    hessian: np.ndarray
    bound: np.ndarray
    evaluations: int
    pieces: tuple | None = None  # (gradient.DevianceGradient at theta, the theta whose Curvature gave the Hessian)
    criterion: float | None = None   # the objective at theta, where a closed-form solution gave it
    forward: tuple | None = None     # gradient.forward's points when the Hessian is by forward differences


@dataclass
class ConvergenceCheck:
    """The outcome of the check: max |scaled gradient| over the free thetas, and what failed (empty: passed)."""

    max_grad: float
    messages: list[str] = field(default_factory=list)
    converged: bool = True       # False when the gradient or a negative curvature says it is not a minimum


def on_bound(theta, lower, delta: float = DELTA) -> np.ndarray:
    """Thetas with a lower bound that lie within one difference step of it (differenced one-sidedly)."""
    theta, lower = np.asarray(theta, dtype=float), np.asarray(lower, dtype=float)
    return np.isfinite(lower) & (theta - lower < delta)


def derivatives(fun, theta, lower, f0: float | None = None, delta: float = DELTA) -> Derivatives:
    """Gradient and Hessian of fun at theta by differences of step delta (lme4's deriv12).

    Central where theta +- delta is feasible; forward (theta, +delta, +2 delta) for a theta on its bound.
    """
    x = np.asarray(theta, dtype=float)
    k = len(x)
    bound = on_bound(x, lower, delta)
    base = np.where(bound, np.asarray(lower, dtype=float), x)
    count = [0]

    def f(v):
        count[0] += 1
        return float(fun(v))

    fx = f(base) if f0 is None or np.any(bound) else float(f0)
    # offsets per coordinate: central (-1, +1) off the bound, forward (+1, +2) on it
    lo = np.where(bound, 1.0, -1.0)
    hi = np.where(bound, 2.0, 1.0)
    e = np.eye(k) * delta
    g, H = np.empty(k), np.empty((k, k))
    f_lo = [f(base + lo[i] * e[i]) for i in range(k)]
    f_hi = [f(base + hi[i] * e[i]) for i in range(k)]
    for i in range(k):
        if bound[i]:                      # forward differences on f(0), f(d), f(2d)
            g[i] = (-3 * fx + 4 * f_lo[i] - f_hi[i]) / (2 * delta)
            H[i, i] = (fx - 2 * f_lo[i] + f_hi[i]) / delta ** 2
        else:
            g[i] = (f_hi[i] - f_lo[i]) / (2 * delta)
            H[i, i] = (f_hi[i] - 2 * fx + f_lo[i]) / delta ** 2
    for i in range(k):
        for j in range(i):
            H[i, j] = H[j, i] = _mixed(f, base, e, lo, hi, i, j)
    return Derivatives(x, g, H, bound, count[0])


def closed_form_derivatives(model, theta, lower, known: tuple | None = None) -> Derivatives | None:
    """The objective's gradient in closed form and its Hessian by central differences of it (engine.gradient;
    2k + 1 solutions, which Satterthwaite's df then reuse), or None where that does not apply or a theta is
    within a difference step of its bound (there derivatives() differences one-sidedly). known: gradient.forward's
    points at theta (forward_derivatives), reused."""
    from lmmcli.engine import gradient

    theta = np.asarray(theta, dtype=float)
    c = None if np.any(on_bound(theta, lower)) else gradient.curvature(model, theta, known)
    if c is None:
        return None

    return Derivatives(theta, _gradient_of(model, c.center), c.hessian(lambda g: _gradient_of(model, g)),
                       np.zeros(len(theta), dtype=bool), 2 * len(theta) + 1, criterion=c.center.criterion)


def _gradient_of(model, g) -> np.ndarray:
    """The profiled objective's gradient from a gradient.DevianceGradient."""
    return g.objective(model.n, model.p, model.reml)


def forward_derivatives(model, theta, lower) -> Derivatives | None:
    """The objective's gradient in closed form and its Hessian by forward differences of it (gradient.forward:
    k + 1 solutions, the Hessian good to ~gradient.STEP relative, enough for a Newton step), or None where
    closed_form_derivatives would be. newton._completed_if_near completes it to central differences
    (k more solutions) when the step stays near theta."""
    from lmmcli.engine import gradient

    theta = np.asarray(theta, dtype=float)
    fw = None if np.any(on_bound(theta, lower)) else gradient.forward(model, theta)
    if fw is None:
        return None
    center, plus = fw
    g0 = _gradient_of(model, center)
    h = gradient.steps(model, theta)
    H = np.column_stack([(_gradient_of(model, a) - g0) / hi for a, hi in zip(plus, h)])
    return Derivatives(theta, g0, (H + H.T) / 2.0, np.zeros(len(theta), dtype=bool), len(theta) + 1,
                       criterion=center.criterion, forward=fw)


def closed_form_gradient(model, theta, lower, near: Derivatives) -> Derivatives | None:
    """Derivatives at theta, a Newton step from near (closed-form derivatives): within MOVE_TOL of the
    difference steps of the Curvature near's Hessian came from, the gradient at theta (one solution) with
    that Hessian; farther, or from a forward-difference near (newton._completed_if_near completes those
    whose step stays near), closed_form_derivatives at theta (2k + 1). None where either is None."""
    from lmmcli.engine import gradient

    theta = np.asarray(theta, dtype=float)
    center = near.theta if near.pieces is None else near.pieces[1]
    h = gradient.steps(model, center)
    if (near.forward is not None or not np.all(np.abs(theta - center) <= MOVE_TOL * h)
            or gradient.curvature(model, center) is None):
        return closed_form_derivatives(model, theta, lower)
    if np.any(on_bound(theta, lower)) or not gradient.interior(model, theta):
        return None
    dg = gradient.at(model, theta)
    return Derivatives(theta, _gradient_of(model, dg), near.hessian, np.zeros(len(theta), dtype=bool), 1,
                       (dg, center), criterion=dg.criterion)


# A Newton step's point reuses the difference points (gradient.Curvature) around the point it came from
# when it moved by at most this share of their steps (2e-6 of theta). Satterthwaite's df from them then
# differ from the point's own by up to ~7e-4 times the move in steps. Measured (move in steps: df apart):
# InstEval REML 0.0104: 5.4e-6, pastes 0.0196: 3.5e-6, sleepstudy (Days||Subject) 0.0085: 4.2e-6,
# sleepstudy (1|Subject) 0.0011: 6.7e-7, gpa (1|student) 0.0006: 4.8e-8; so at most ~1.4e-5, the 5th
# significant digit, where lmerTest agrees to 1e-3. With 1e-4 (~1e-9 in the df) InstEval's REML fit took 4
# more solutions (~0.16 s of its 1.5 s).
MOVE_TOL = 2e-2


def memoise_moved(model, d: Derivatives) -> None:
    """Memoise (engine.gradient) the Curvature of d's point when its Hessian came from a nearby one."""
    from lmmcli.engine import gradient

    if d.pieces is not None:
        gradient.moved(model, gradient.curvature(model, d.pieces[1]), d.pieces[0])


def central_gradient(fun, x, delta: float = DELTA) -> np.ndarray:
    """The gradient of fun at x by central differences of step delta (2k evaluations)."""
    e = np.eye(len(x)) * delta
    return np.array([(float(fun(x + e[i])) - float(fun(x - e[i]))) / (2 * delta) for i in range(len(x))])


def _mixed(f, base, e, lo, hi, i, j) -> float:
    """d2f / dxi dxj from the four corners of the (i, j) difference rectangle."""
    corners = [(hi[i], hi[j], 1), (hi[i], lo[j], -1), (lo[i], hi[j], -1), (lo[i], lo[j], 1)]
    total = sum(s * f(base + a * e[i] + b * e[j]) for a, b, s in corners)
    return total / ((hi[i] - lo[i]) * (hi[j] - lo[j]) * e[i, i] * e[j, j])


def check(d: Derivatives, grad_tol: float = GRAD_TOL, hess_tol: float = HESS_TOL) -> ConvergenceCheck:
    """lme4's checkConv on the free thetas, and the sign of the gradient on the bound ones."""
    free, bound = ~d.bound, d.bound
    out = ConvergenceCheck(0.0)
    if not (np.all(np.isfinite(d.gradient)) and np.all(np.isfinite(d.hessian))):
        out.messages.append("the convergence check failed: the objective's derivatives are not finite")
        out.converged = False
        return out
    if np.any(bound) and d.gradient[bound].min() < -grad_tol:
        i = int(np.flatnonzero(bound)[np.argmin(d.gradient[bound])])
        out.messages.append(f"model failed to converge: the objective decreases off the boundary "
                            f"(gradient {d.gradient[i]:.3g} at theta[{i + 1}] = 0)")
        out.converged = False
    if np.any(free):
        _check_free(d.gradient[free], d.hessian[np.ix_(free, free)], np.flatnonzero(free), out,
                    grad_tol, hess_tol)
    return out


def _check_free(g, H, index, out: ConvergenceCheck, grad_tol: float, hess_tol: float) -> None:
    """Gradient (scaled by the Hessian's Cholesky factor) and Hessian checks, as lme4's checkConv/checkHess."""
    try:
        R = np.linalg.cholesky((H + H.T) / 2).T        # H = R'R, R upper
        scaled = np.linalg.solve(R, g)                 # lme4: solve(chol(Hessian), gradient)
    except np.linalg.LinAlgError:
        scaled = None
    if scaled is None or not np.all(np.isfinite(scaled)):
        out.messages.append("model failed to converge: unable to evaluate the scaled gradient")
        out.max_grad = float(np.max(np.abs(g)))
    else:
        mingrad = np.minimum(np.abs(scaled), np.abs(g))
        out.max_grad = float(mingrad.max())
        if out.max_grad > grad_tol:
            w = int(index[np.argmax(mingrad)]) + 1
            out.messages.append(f"model failed to converge with max|grad| = {out.max_grad:.3g} "
                                f"(tol = {grad_tol:g}, component {w})")
            out.converged = False
    _check_hessian(H, out, hess_tol)


def _check_hessian(H, out: ConvergenceCheck, tol: float) -> None:
    """lme4's checkHess: negative, zero, very large or badly spread eigenvalues of the Hessian."""
    evals = np.linalg.eigvalsh((H + H.T) / 2)
    negative = int(np.sum(evals < -tol))
    if negative:
        out.messages.append(f"model failed to converge: degenerate Hessian with {negative} negative "
                            f"eigenvalue{'s' if negative > 1 else ''}")
        out.converged = False
    elif np.any(np.abs(evals) < tol) or evals.min() <= 0:
        out.messages.append("the Hessian is numerically singular: parameters are not uniquely determined")
    else:
        if evals.max() * tol > 1:
            out.messages.append("model is nearly unidentifiable: very large eigenvalue; rescale variables?")
        if evals.min() / evals.max() < tol:
            out.messages.append("model is nearly unidentifiable: large eigenvalue ratio; rescale variables?")
