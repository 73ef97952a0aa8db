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
FTOL_ABS = 1e-10
FTOL_REL = 1e-12
XTOL_ABS = 1e-10
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


def minimize_theta(fun, theta0, lower, maxeval: int = MAXEVAL) -> OptSummary:
    """Minimise fun(theta) subject to theta >= lower with BOBYQA; never raises on non-convergence."""
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
    opt.set_min_objective(wrapped)
    opt.set_ftol_abs(FTOL_ABS)
    opt.set_ftol_rel(FTOL_REL)
    opt.set_xtol_abs(XTOL_ABS)
    opt.set_maxeval(maxeval)
    opt.set_initial_step(_initial_step(theta0, lower))
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
