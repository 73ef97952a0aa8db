"""The Newton end step after BOBYQA (optimize.fit_theta, engine.fit's polished refits).

opt: an optimize.OptSummary (its theta, fmin, lower); the result is the same with theta, fmin and
newton (NewtonSteps) replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmmcli.engine import convergence, gradient

# BOBYQA stops where the objective's rounding noise hides further descent, which fixes theta only to
# ~sqrt(noise / curvature) relative (1e-6 on sleepstudy): the same problem in other units, or summed in
# another order, ends ~1e-6 apart. Where the gradient is in closed form (engine.gradient) it is zero to
# ~noise / curvature instead: Newton steps theta -= H^-1 g, each kept only when the objective does not
# rise beyond its rounding noise (NEWTON_NOISE of |f| + n: the objective is a sum over rows) and |g| falls.
# The first step's H is by forward differences of the gradient (k + 1 solutions, good to ~1e-4 relative).
# Where the step it predicts stays within convergence.MOVE_TOL of the difference steps (BOBYQA ended
# close: two thirds of the test suite's fits, InstEval REML at 0.010), those points are completed to central
# differences there (k more) and the steps use that Hessian, which the check and Satterthwaite's df then
# reuse: 2k + 2 solutions in all (InstEval: 8). Farther, the first step lands within ~1e-4 of BOBYQA's
# distance of the optimum and the next one takes central differences at the new point (2k + 1): 3k + 2
# or 3k + 3 solutions (InstEval ML: 12). A step below NEGLIGIBLE of the difference steps (1e-11 of theta)
# is not taken: it would cost a gradient solution (~40 ms on InstEval) for nothing the output shows.
# NEWTON_NOISE: measured on gpa's (1 + occasion | student), two objectives from full factors 1.9e-13
# (|f| + n) apart at points 1e-10 apart; with 1e-13 the second step, which lowered |g| from 1.5e-7 to
# 1.9e-10, was refused.
NEWTON_STEPS = 2
NEWTON_NOISE = 1e-12
NEGLIGIBLE = 1e-7


def newton_polish(fun, opt, model, boundary_tol: float):
    """(summary at the polished end point, with its NewtonSteps; its Derivatives or None): at most
    NEWTON_STEPS Newton steps on theta where the closed-form gradient applies and theta is interior;
    where diagonal thetas end within boundary_tol of 0, _polish_on_boundary instead. feval stays
    BOBYQA's count; the step's own cost is in NewtonSteps.

    The first step uses forward differences at opt's point (convergence.forward_derivatives), completed
    to central ones there first when the step it predicts is within convergence.MOVE_TOL of their steps;
    each later one the Hessian of the last point whose 2k + 1 gradient solutions were taken. A point
    within MOVE_TOL of it needs only its gradient (one solution; on InstEval about 2 objective
    evaluations). The check and Satterthwaite's df then reuse the final point's derivatives.
    """
    if model is None or opt.theta.size == 0 or not np.isfinite(opt.fmin):
        return opt, None
    d = convergence.forward_derivatives(model, opt.theta, opt.lower)
    if d is None:
        return _polish_on_boundary(fun, opt, _noise(opt, model), boundary_tol), None
    return _closed_form_polish(fun, opt, model, d)


def stationary_polish(fun, opt, model):
    """(newton_polish's summary and Derivatives) when its closed-form Newton steps end at a strict
    interior local minimum -- H positive definite and the Newton decrement g'H^-1 g / 2 (the
    objective's predicted further fall) within the objective's rounding noise; else None (no closed
    form, a theta near its bound, H not positive definite, or steps that stop short). optimize.fit_theta
    then skips its restarts: from such a point a restart with a small trust region can only confirm it.
    """
    if model is None or opt.theta.size == 0 or not np.isfinite(opt.fmin):
        return None
    d = convergence.forward_derivatives(model, opt.theta, opt.lower)
    if d is None:
        return None
    out, d = _closed_form_polish(fun, opt, model, d)
    step = _newton_step(d)
    if step is None or not float(d.gradient @ step) / 2 <= _noise(out, model):
        return None
    return out, d


def _noise(opt, model) -> float:
    """The objective's rounding noise at opt's end point (NEWTON_NOISE of |f| + n)."""
    return NEWTON_NOISE * (abs(opt.fmin) + model.n)


def _closed_form_polish(fun, opt, model, d):
    """newton_polish where the closed-form gradient applies, from d: opt's forward_derivatives (their
    points completed to central differences where no step is kept, for the check and Satterthwaite)."""
    # the trial points' objectives come from their gradient solutions, whose full factor sums in another
    # order than BOBYQA's objective (measured 2e-12 relative apart, pastes (1|batch/cask)): they are
    # compared with the start's value from its own solution, not with opt.fmin
    f0 = d.criterion
    d = _completed_if_near(model, d, opt.lower)
    start = d.evaluations
    theta, fmin, d, steps, solutions, evals = _newton_loop(
        fun, lambda t, near: convergence.closed_form_gradient(model, t, opt.lower, near), d, f0,
        _noise(opt, model), NEGLIGIBLE * gradient.steps(model, opt.theta))
    if d.forward is not None:
        d = convergence.closed_form_derivatives(model, d.theta, opt.lower, d.forward)
        solutions += len(theta)
    convergence.memoise_moved(model, d)
    fmin, gain = (fmin, f0 - fmin) if steps else (opt.fmin, 0.0)
    return replace(opt, theta=theta, fmin=fmin, newton=NewtonSteps(steps, start + solutions, evals, gain)), d


def _completed_if_near(model, d, lower):
    """Forward-difference d completed to central differences at its own point (k more solutions; its
    evaluations count all 2k + 1) when the Newton step it predicts is within convergence.MOVE_TOL of the
    difference steps; else d."""
    step = _newton_step(d)
    if step is None or not np.all(np.abs(step) <= convergence.MOVE_TOL * gradient.steps(model, d.theta)):
        return d
    central = convergence.closed_form_derivatives(model, d.theta, lower, d.forward)
    return d if central is None else central


def _newton_loop(fun, gradient_at, d, fmin: float, noise: float, negligible=0.0):
    """Newton steps with d's Hessian from d.theta while each keeps the objective within noise and lowers
    |g|, and is larger than `negligible` (per theta) somewhere: (theta, fmin, its Derivatives, steps
    kept, gradient_at's work at the points tried, objective evaluations). gradient_at(theta, d):
    Derivatives at theta, a step from d, or None."""
    theta, steps, work, evals = d.theta, 0, 0, 0
    for _ in range(NEWTON_STEPS):
        step = _newton_step(d)
        trial = None if step is None else theta - step
        if trial is None or np.all(np.abs(step) <= negligible) or np.array_equal(trial, theta):
            break
        dt = gradient_at(trial, d)
        if dt is None:
            break
        f = float(fun(trial)) if dt.criterion is None else dt.criterion
        work, evals = work + dt.evaluations, evals + (dt.criterion is None)
        if not (f <= fmin + noise and np.linalg.norm(dt.gradient) < np.linalg.norm(d.gradient)):
            break
        theta, fmin, d, steps = trial, f, dt, steps + 1
    return theta, fmin, d, steps, work, evals


def _polish_on_boundary(fun, opt, noise: float, boundary_tol: float):
    """The Newton end step for a theta with diagonals within boundary_tol of 0 (the closed form needs
    them clear of it): those set to 0 when the objective stays within noise (a refit in other units
    ends at 1e-6 or at 0 alike), then Newton steps on the other thetas by differences of the objective
    (gradient error ~noise / DELTA, far below BOBYQA's sqrt(noise)); unchanged when any of those is
    itself within a difference step of a bound."""
    edge = (opt.lower == 0) & (opt.theta < boundary_tol)
    free = ~edge
    lower = opt.lower[free]
    if not edge.any() or not free.any() or np.any(convergence.on_bound(opt.theta[free], lower)):
        return opt
    base = np.where(edge, 0.0, opt.theta)
    f0 = float(fun(base))
    if not f0 <= opt.fmin + noise:
        return opt

    def sub(x):
        t = base.copy()
        t[free] = x
        return fun(t)

    def gradient_at(x, near):
        if np.any(convergence.on_bound(x, lower)):
            return None
        return convergence.Derivatives(x, convergence.central_gradient(sub, x), near.hessian,
                                       np.zeros(len(x), bool), 2 * len(x))

    d = convergence.derivatives(sub, base[free], lower, f0=f0)
    x, fmin, _, steps, work, evals = _newton_loop(sub, gradient_at, d, f0, noise)
    theta = base.copy()
    theta[free] = x
    return replace(opt, theta=theta, fmin=fmin,
                   newton=NewtonSteps(steps, 0, 1 + d.evaluations + work + evals, opt.fmin - fmin))


def _newton_step(d: convergence.Derivatives) -> np.ndarray | None:
    """H^-1 g, or None when H is not positive definite (no minimum to step to)."""
    try:
        R = np.linalg.cholesky(d.hessian)
    except np.linalg.LinAlgError:
        return None
    step = np.linalg.solve(R.T, np.linalg.solve(R, d.gradient))
    return step if np.all(np.isfinite(step)) else None


@dataclass
class NewtonSteps:
    """What newton_polish did: steps kept, gradient solutions used (2k + 1 per point tried, the last
    point's reused by the convergence check), objective evaluations, and the objective it lowered by."""

    steps: int
    solutions: int
    evaluations: int
    gain: float
