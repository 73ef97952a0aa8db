"""Bounded derivative-free minimisation of the profiled objective: the one place that picks an optimizer.

We use BOBYQA (Powell 2009) from NLopt, the optimizer lme4 uses by default (`nloptwrap`).
Measured on sleepstudy (Days|Subject): BOBYQA converges in about 40 evaluations, where scipy's
Nelder-Mead and Powell need 300 or more. NLopt's package is a compiled, well-kept wrapper; writing
BOBYQA ourselves would be ~2,000 lines of delicate code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Measured (bench/, 14 reference cases + InstEval-shaped + 1e4/1e6 rows): loosening these to lme4's
# nloptwrap defaults (ftol_abs = xtol_abs = 1e-8) or further (1e-6, xtol 1e-4) saves at most ~10%
# of evaluations (InstEval-shaped 108 -> 98) -- BOBYQA spends most of them far from the optimum --
# and costs up to 7e-6 in the objective; a smaller initial step helps some cases and hurts others.
# So they stay tight.
FIT_TOL = {"ftol_abs": 1e-10, "ftol_rel": 1e-12, "xtol_abs": 1e-10}
MAXEVAL = 100_000


@dataclass
class OptSummary:
    """What the optimizer did: start, result, evaluations and how it stopped."""

    theta0: np.ndarray
    lower: np.ndarray
    theta: np.ndarray
    fmin: float
    feval: int
    optimizer: str
    return_code: str
    converged: bool
    messages: list[str] = field(default_factory=list)


def _initial_step(theta0: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """lme4's rule of thumb: a step of 0.75 for parameters on a bound-free scale, never past a bound."""
    step = np.where(theta0 != 0, 0.75 * np.abs(theta0), 0.75)
    return np.maximum(step, 1e-3)


def minimize_theta(fun, theta0, lower, maxeval: int = MAXEVAL, step=None, upper=None, tol=None) -> OptSummary:
    """Minimise fun(theta) subject to lower <= theta (<= upper) with BOBYQA; never raises on non-convergence.

    step: BOBYQA's initial step per parameter (default: lme4's rule, _initial_step).
    tol: NLopt stopping tolerances by name (ftol_abs, ftol_rel, xtol_abs, xtol_rel); default FIT_TOL.
    """
    import nlopt  # imported here so that `lmm --help` and error paths stay fast

    theta0 = np.asarray(theta0, dtype=float)
    lower = np.asarray(lower, dtype=float)
    if theta0.size == 0:
        return OptSummary(theta0, lower, theta0, float(fun(theta0)), 1, "none", "no parameters", True)
    best = {"f": np.inf, "x": theta0.copy(), "n": 0}

    def wrapped(x, grad):
        f = float(fun(x))
        best["n"] += 1
        if f < best["f"]:
            best["f"], best["x"] = f, x.copy()
        return f if np.isfinite(f) else 1e300

    opt = nlopt.opt(nlopt.LN_BOBYQA, theta0.size)
    opt.set_lower_bounds(lower)
    if upper is not None:
        opt.set_upper_bounds(np.asarray(upper, dtype=float))
    opt.set_min_objective(wrapped)
    for name, value in (FIT_TOL if tol is None else tol).items():
        getattr(opt, f"set_{name}")(value)
    opt.set_maxeval(maxeval)
    opt.set_initial_step(_initial_step(theta0, lower) if step is None else np.asarray(step, dtype=float))
    code, messages = _run(opt, nlopt, theta0)
    converged = code in ("FTOL_REACHED", "XTOL_REACHED", "SUCCESS", "ROUNDOFF_LIMITED", "STOPVAL_REACHED")
    if code == "MAXEVAL_REACHED":
        messages.append(f"optimizer stopped after the maximum of {maxeval} evaluations")
    return OptSummary(theta0, lower, best["x"], best["f"], best["n"], "BOBYQA (NLopt)", code, converged, messages)


def _run(opt, nlopt, theta0) -> tuple[str, list[str]]:
    """Run the optimizer; NLopt's 'roundoff limited' only means it cannot improve further."""
    names = {v: k for k, v in vars(nlopt).items() if k.isupper() and isinstance(v, int)}
    try:
        opt.optimize(theta0)
        return names.get(opt.last_optimize_result(), "UNKNOWN"), []
    except nlopt.RoundoffLimited:
        return "ROUNDOFF_LIMITED", []
    except (RuntimeError, ValueError) as exc:
        return "FAILURE", [f"optimizer failed: {exc}"]


# -- where to start ---------------------------------------------------------------------------------
# Measured (bench insteval, 3 scalar terms, 25 ms per evaluation): from lme4's theta = 1 BOBYQA
# needs 107 evaluations; from the one-term estimates below (within 1-40% of the optimum) with a
# step of STEP_FRAC of each, 33, and a 4e-6 lower objective (from the optimum itself: 22). Over
# STEP_FRAC in {0.1, 0.2, 0.3} x STEP_MIN in {0.01, 0.02, 0.05} on 5 crossed models, REML and ML,
# the totals differ by < 10% (0.1 / 0.01 is worst, 0.2 / 0.05 among the best); 0.5 costs 50 on insteval.
STEP_FRAC = 0.2
STEP_MIN = 0.05      # a term whose one-term estimate is ~0 still gets a step of this size
# The one-term fits' views of sigma^2 must agree within this factor (they do to 0.1% on the crossed
# insteval design, to 10% on gpa (1|student) + (1|occasion)); where they do not (penicillin: 3x,
# nested or same-factor terms: negative) a start built from them cost up to twice lme4's evaluations.
AGREE = 1.25


def fit_theta(model) -> OptSummary:
    """BOBYQA on a PlsModel's objective from start_theta's start and step."""
    theta0, step = start_theta(model)
    return minimize_theta(model.objective, theta0, model.lower, step=step)


def start_theta(model) -> tuple[np.ndarray, np.ndarray | None]:
    """(theta0, initial step): lme4's theta = 1 with lme4's step, except for several scalar terms.

    There each term k is fitted alone (its objective costs O(levels), microseconds), which gives a
    variance tau_k^2 and a residual variance sigma_k^2 that has absorbed the other terms, roughly
    sigma_k^2 = sigma^2 + sum_{j != k} tau_j^2 mean(z_j^2). Solving for sigma^2 (averaged over k)
    gives theta_k = tau_k / sigma, a start close to the joint optimum when the terms are crossed.
    When the K views of sigma^2 disagree, that picture is wrong and lme4's start is used.
    """
    blocks = model.blocks
    if len(blocks) < 2 or any(b.p != 1 for b in blocks):
        return model.theta0, None
    try:
        fits = [_one_term_fit(model.term_model(k)) for k in range(len(blocks))]
    except (np.linalg.LinAlgError, ArithmeticError, ValueError):
        return model.theta0, None
    tau2, share, sig2 = map(np.array, zip(*fits))
    s2 = sig2 - (share.sum() - share)      # sigma^2 as seen from each one-term fit
    if not (np.all(np.isfinite(s2)) and s2.min() > 0 and s2.max() <= AGREE * s2.min()):
        return model.theta0, None          # the terms are nested or share a factor: no additive picture
    theta0 = np.sqrt(tau2 / s2.mean())
    return theta0, np.maximum(STEP_FRAC * theta0, STEP_MIN)


def _one_term_fit(model) -> tuple[float, float, float]:
    """(tau^2, its share of a row's variance, tau^2 mean(z^2), and sigma^2) of a one-term model's optimum."""
    opt = minimize_theta(model.objective, model.theta0, model.lower)
    _, pwrss, _ = model.deviance_parts(opt.theta)
    s2 = pwrss / (model.n - model.p if model.reml else model.n)
    if not (opt.converged and np.isfinite(s2) and s2 > 0):
        raise ArithmeticError("one-term fit failed")
    tau2 = float(opt.theta[0]) ** 2 * s2
    return tau2, tau2 * float(model.D1.sum()) / model.n, float(s2)
