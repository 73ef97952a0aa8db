"""Bounded derivative-free minimisation of the profiled objective: the one place that picks an optimizer.

We use BOBYQA (Powell 2009) from NLopt, the optimizer lme4 uses by default (`nloptwrap`).
Measured on sleepstudy (Days|Subject): BOBYQA converges in about 40 evaluations, where scipy's
Nelder-Mead and Powell need 300 or more. NLopt's package is a compiled, well-kept wrapper; writing
BOBYQA ourselves would be ~2,000 lines of delicate code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from lmmcli.engine import convergence, wide
from lmmcli.engine.newton import newton_polish, stationary_polish
from lmmcli.engine.convergence import ConvergenceCheck

# Stopping tolerances: absolute only. The objective's additive constant depends on y's units (|f| = 1744
# for sleepstudy's Reaction, 310 for Reaction standardized, 13011 for Reaction * 1e-9), its differences
# do not: the relative ftol this replaced (1e-12 |f|) stopped the same problem at points ~1e-4 apart
# in theta in different units. The objective is a sum over the n rows (-2 log L), and its size and
# rounding noise grow with n, not with the units: so ftol is FTOL_PER_ROW * n, which is the old rule
# with |f| / n (= 1 + log(2 pi sigma^2), 9.7 for Reaction) replaced by 10 whatever the units. Measured
# (14 reference cases, InstEval-shaped data REML and ML): no fit takes more evaluations than under
# the relative rule (sleepstudy 78 and InstEval-shaped 59 / 61 unchanged, gpa_slope 90 -> 62), and no
# objective is higher by more than 2e-10. Alternatives measured: a fixed 1e-10 costs evaluations
# (sleepstudy 103); a fixed 1e-7 leaves sleepstudy's gradient at 1.2e-4; 1e-8 costs InstEval 71.
FTOL_PER_ROW = 1e-11
XTOL = 1e-10


def fit_tol(n: int) -> dict:
    """NLopt's stopping tolerances for the objective of a model of n rows."""
    return {"ftol_abs": FTOL_PER_ROW * max(int(n), 1), "xtol_abs": XTOL}


FIT_TOL = fit_tol(100)      # minimize_theta's default, for an objective not tied to a model's rows
MAXEVAL = 100_000


@dataclass
class OptRun:
    """One BOBYQA run: why it ran, where it started, its evaluations and the objective it reached."""

    kind: str            # "initial", "restart" (from the last optimum) or "off-boundary"
    feval: int
    fmin: float
    return_code: str


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
    runs: list[OptRun] = field(default_factory=list)      # every BOBYQA run of fit_theta, in order
    check: ConvergenceCheck | None = None                 # lme4's checkConv at the end point
    newton: object = None                                 # newton.NewtonSteps: the Newton end step, when it applied


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
# With three or more terms, the others are also fitted together when that is cheap (_joint_start): its
# rest part at most 1 / JOINT_REST_FRAC of the model's. On InstEval its start is within 3% of the
# optimum (the one-term start: 45% off for dept:service, which absorbs the instructors' variance) and
# BOBYQA needs 24 evaluations instead of 31 (from the optimum itself, 24). Over STEP_FRAC in {0.05, 0.1,
# 0.2} x STEP_MIN in {0.01, 0.02, 0.03, 0.05} on 10 three- and four-term fits (InstEval and its
# synthetic copy REML and ML, crossed and nested with a zero dept variance, REML and ML), 0.05 / 0.02
# has the lowest total (256 against the one-term start's 362) and no fit above the one-term start's;
# a wider step for the first term only (0.1, 0.2 of it) costs more. On the small crossed designs of the
# tests (3 seeds, REML and ML: 161 against 187) the first term's start is no better (14% off).
JOINT_REST_FRAC = 4
JOINT_STEP_FRAC = 0.05
JOINT_STEP_MIN = 0.02


# -- after the first run ------------------------------------------------------------------------------
# BOBYQA's trust region shrinks as it converges; on hard problems (a 3 x 3 random-effects block near
# singular) it can stop while still descending. A restart from the end point with a fresh trust region
# either confirms the optimum (in ~2k + 5 evaluations) or moves on; repeated until the objective improves
# by no more than RESTART_ATOL (absolute, as FIT_TOL; at most MAX_RESTARTS times). Where the closed-form
# gradient shows the end point a strict minimum (newton.stationary_polish) the restarts are skipped.
RESTART_ATOL = 1e-6
MAX_RESTARTS = 8
RESTART_STEP = 0.05      # the fresh trust region: this fraction of each theta, at least RESTART_STEP_MIN
RESTART_STEP_MIN = 0.01
# A diagonal theta that ends at 0 can be a local optimum on the boundary with a better one inside
# (lme4's restart_edge, MixedModels' boundary checks): BOBYQA is restarted from the point moved off
# the boundary to OFF_BOUNDARY (and with that column of T negated), and the lowest result kept.
OFF_BOUNDARY = 0.25
MAX_OFF_BOUNDARY = 4    # runs at most
BOUNDARY_TOL = 1e-5      # lme4's boundary.tol: thetas this close to 0 are set to 0 when that lowers the objective


def fit_theta(model, check: bool = True) -> OptSummary:
    """BOBYQA on a PlsModel's objective from start_theta's start and step, then restarts and checks.

    The runs: the first from start_theta. When the closed-form Newton steps from its end reach a strict
    interior minimum (newton.stationary_polish), that is the optimum: a restart from there could only
    confirm it (measured on sleepstudy: 2.6e-11 lower, noise; InstEval saves 17 of 48 evaluations).
    Otherwise (no closed-form gradient, a boundary or singular fit, steps that stop short): restarts from
    the end point until it stops improving; runs from off the boundary (both signs of the column) when a
    diagonal theta ends at 0; thetas within BOUNDARY_TOL of 0 set to 0 when that lowers the objective;
    the Newton end step. Then (check) lme4's convergence check, whose failures are messages (and
    converged = False).
    """
    fun = wide.objective_of(model)
    tol = fit_tol(model.n)
    theta0, step = start_theta(model)
    opt = minimize_theta(fun, theta0, model.lower, step=step, tol=tol)
    runs = [OptRun("initial", opt.feval, opt.fmin, opt.return_code)]
    polished = stationary_polish(fun, opt, model)
    if polished is not None:
        opt, d = polished
    else:
        opt = _restart_until_stable(fun, opt, model.lower, runs, tol)
        opt = _off_boundary(fun, opt, model.lower, runs, theta_columns(model.blocks), tol)
        opt = _snap_to_boundary(fun, opt, model.lower)
        opt, d = newton_polish(fun, opt, model, BOUNDARY_TOL)
    opt = replace(opt, theta0=np.asarray(theta0, dtype=float), runs=runs, feval=sum(r.feval for r in runs))
    return with_check(fun, opt, model, d) if check else opt


def local_step(theta) -> np.ndarray:
    """BOBYQA's initial step for a run from (near) an optimum: a small trust region around theta."""
    return np.maximum(RESTART_STEP * np.abs(theta), RESTART_STEP_MIN)


def _better(new: OptSummary, old: OptSummary) -> bool:
    return new.fmin < old.fmin - RESTART_ATOL


def _restart_until_stable(fun, opt: OptSummary, lower, runs: list[OptRun], tol=None) -> OptSummary:
    """Restart BOBYQA from its own end point until the objective improves by <= RESTART_ATOL."""
    if opt.theta.size == 0 or not np.isfinite(opt.fmin):
        return opt
    for _ in range(MAX_RESTARTS):
        new = minimize_theta(fun, opt.theta, lower, step=local_step(opt.theta), tol=tol)
        runs.append(OptRun("restart", new.feval, new.fmin, new.return_code))
        improved = _better(new, opt)
        if new.fmin < opt.fmin:
            opt = _keep(new, opt)     # even a gain below RESTART_ATOL: the objective may be noisy (cancellation)
        if not improved:
            break
    return opt


def _keep(new: OptSummary, old: OptSummary) -> OptSummary:
    """The new run's end point, with the first run's start and both runs' messages."""
    return replace(new, theta0=old.theta0, messages=old.messages + [m for m in new.messages
                                                                  if m not in old.messages])


def _off_boundary(fun, opt: OptSummary, lower, runs: list[OptRun], columns=None, tol=None) -> OptSummary:
    """When diagonal thetas end at 0, BOBYQA runs from OFF_BOUNDARY there; the lowest optimum is kept.

    With T_jj = 0 the sign of the rest of T's column j is arbitrary (T and T with column j negated give
    the same T T'), but off the boundary the two differ (a correlation of either sign): both are tried.
    columns[i]: the (block, column) of theta element i, or None when unknown (no sign flips then).
    tol: the runs' stopping tolerances (default FIT_TOL).
    """
    edge = np.flatnonzero((lower == 0) & (opt.theta < BOUNDARY_TOL))
    if edge.size == 0 or not np.isfinite(opt.fmin):
        return opt
    best = opt
    for start in _off_boundary_starts(opt.theta, edge, columns)[:MAX_OFF_BOUNDARY]:
        new = minimize_theta(fun, start, lower, step=_initial_step(start, lower), tol=tol)
        runs.append(OptRun("off-boundary", new.feval, new.fmin, new.return_code))
        if _better(new, best):
            best = _keep(new, opt)
    return opt if best is opt else _restart_until_stable(fun, best, lower, runs, tol)


def _off_boundary_starts(theta, edge, columns) -> list[np.ndarray]:
    """Starts moved off the boundary: all edge diagonals at OFF_BOUNDARY, then each edge column negated."""
    start = theta.copy()
    start[edge] = OFF_BOUNDARY
    starts = [start]
    for i in edge if columns is not None else ():
        same = np.array([c == columns[i] for c in columns]) & (np.arange(len(theta)) != i)
        if np.any(same & (theta != 0)):
            flipped = start.copy()
            flipped[same] = -flipped[same]
            starts.append(flipped)
    return starts


def theta_columns(blocks) -> list[tuple[int, int]]:
    """(block, column of T) of each theta element, in theta's order."""
    return [(k, j) for k, blk in enumerate(blocks) for _i, j in blk.theta_index()]


def _snap_to_boundary(fun, opt: OptSummary, lower) -> OptSummary:
    """lme4's check.boundary: a theta within BOUNDARY_TOL of its bound 0 is set to 0 when that lowers the objective."""
    theta, fmin = opt.theta.copy(), opt.fmin
    for i in np.flatnonzero((lower == 0) & (theta > 0) & (theta < BOUNDARY_TOL)):
        trial = theta.copy()
        trial[i] = 0.0
        f = float(fun(trial))
        if f < fmin:
            theta, fmin = trial, f
    return opt if fmin == opt.fmin else replace(opt, theta=theta, fmin=fmin)


def with_check(fun, opt: OptSummary, model=None, d: convergence.Derivatives | None = None) -> OptSummary:
    """The summary with lme4's convergence check at its end point (messages added; converged if it passes);
    with the model, by its closed-form gradient where there is one; d: derivatives already taken there."""
    if opt.theta.size == 0 or not np.isfinite(opt.fmin):
        return opt
    if d is None or not np.array_equal(d.theta, opt.theta):
        d = convergence.closed_form_derivatives(model, opt.theta, opt.lower) if model is not None else None
    if d is None:
        d = convergence.derivatives(fun, opt.theta, opt.lower, f0=opt.fmin)
    result = convergence.check(d)
    return replace(opt, check=result, converged=opt.converged and result.converged,
                   messages=opt.messages + result.messages)


def start_theta(model) -> tuple[np.ndarray, np.ndarray | None]:
    """(theta0, initial step): lme4's theta = 1 with lme4's step, except for several scalar terms.

    There each term k is fitted alone (its objective costs O(levels), microseconds), which gives a
    variance tau_k^2 and a residual variance sigma_k^2 that has absorbed the other terms, roughly
    sigma_k^2 = sigma^2 + sum_{j != k} tau_j^2 mean(z_j^2). Solving for sigma^2 (averaged over k)
    gives theta_k = tau_k / sigma, a start close to the joint optimum when the terms are crossed.
    When the K views of sigma^2 disagree, that picture is wrong and lme4's start is used.
    """
    blocks = model.blocks
    if len(blocks) < 2 or any(b.p != 1 for b in blocks) or wide.applies(model):
        return model.theta0, None      # (a wide model's one-term fits would each cost O(p^3) per evaluation)
    try:
        fits = [_one_term_fit(model.term_model(k)) for k in range(len(blocks))]
    except (np.linalg.LinAlgError, ArithmeticError, ValueError):
        return model.theta0, None
    tau2, share, sig2 = map(np.array, zip(*fits))
    s2 = sig2 - (share.sum() - share)      # sigma^2 as seen from each one-term fit
    if not (np.all(np.isfinite(s2)) and s2.min() > 0 and s2.max() <= AGREE * s2.min()):
        return model.theta0, None          # the terms are nested or share a factor: no additive picture
    joint = _joint_start(model, fits[0])
    if joint is not None:
        return joint, np.maximum(JOINT_STEP_FRAC * joint, JOINT_STEP_MIN)
    theta0 = np.sqrt(tau2 / s2.mean())
    return theta0, np.maximum(STEP_FRAC * theta0, STEP_MIN)


def _joint_start(model, first: tuple[float, float, float]) -> np.ndarray | None:
    """The start from the first term fitted alone and the other terms fitted together, or None.

    Terms that are nested or overlap (InstEval's instructors within departments) bias each other's
    one-term estimates; fitted jointly they do not. The model without its first (largest) term is
    cheap when its own rest part is small (its cost per evaluation ~ rest^3). Its residual variance
    has absorbed the first term's share, and the first term's residual variance the others': two
    views of sigma^2 combined as in start_theta. None where it does not apply, fails or disagrees.
    """
    if len(model.blocks) < 3 or JOINT_REST_FRAC * sum(b.nlevels for b in model.blocks[2:]) > model.q_r:
        return None
    try:
        sub = model.without_first_model()
        start, step = start_theta(sub)
        opt = minimize_theta(sub.objective, start, sub.lower, step=step, tol=fit_tol(sub.n))
        _, pwrss, _ = sub.deviance_parts(opt.theta)
    except (np.linalg.LinAlgError, ArithmeticError, ValueError):
        return None
    s2_sub = pwrss / (sub.n - sub.p if sub.reml else sub.n)
    tau2 = np.r_[first[0], opt.theta ** 2 * s2_sub]
    share = tau2 * np.array([model.cp.term_gram(k)[0, 0] for k in range(len(model.blocks))]) / model.n
    s2 = np.array([s2_sub - share[0], first[2] - share[1:].sum()])
    if not (opt.converged and np.all(np.isfinite(s2)) and s2.min() > 0 and s2.max() <= AGREE * s2.min()):
        return None
    return np.sqrt(tau2 / s2.mean())


def _one_term_fit(model) -> tuple[float, float, float]:
    """(tau^2, its share of a row's variance, tau^2 mean(z^2), and sigma^2) of a one-term model's optimum."""
    opt = minimize_theta(model.objective, model.theta0, model.lower, tol=fit_tol(model.n))
    _, pwrss, _ = model.deviance_parts(opt.theta)
    s2 = pwrss / (model.n - model.p if model.reml else model.n)
    if not (opt.converged and np.isfinite(s2) and s2 > 0):
        raise ArithmeticError("one-term fit failed")
    tau2 = float(opt.theta[0]) ** 2 * s2
    return tau2, tau2 * float(model.D1.sum()) / model.n, float(s2)
