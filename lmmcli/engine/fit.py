"""The engine's one entry point: fit(crossprod, reml) -> EngineFit (the optimum, the solution, the units).

The main fit, the profile, the bootstrap and the model comparison all come through here. The optimizer
always works in the record's stored units (crossprod.py, scaling.py: well-conditioned whatever the
data's magnitudes), and everything an EngineFit hands out is in the original units: so every refit
(an ML refit, a profile point, a bootstrap replicate) is scale-free.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmmcli.engine.crossprod import CrossProducts
from lmmcli.engine.newton import newton_polish
from lmmcli.engine.optimize import BOUNDARY_TOL, MAXEVAL, OptSummary, fit_theta, local_step, minimize_theta
from lmmcli.engine.pls import PlsModel, PlsSolution
from lmmcli.engine.scaling import rescaled

# Tolerances for refits from a nearby optimum (the profile's ML refit, bootstrap replicates): absolute
# only, as optimize.FIT_TOL (the objective's constant depends on y's units, its differences do not), and
# tighter: a refit is compared with the fit it started from (a profile's ends, a bootstrap's spread), so
# it runs down to the objective's rounding noise (~2e-12 with y standardized). Measured: no slower than
# FIT_TOL for refits from the optimum.
REFIT_TOL = {"ftol_abs": 1e-12, "xtol_abs": 1e-10}


class ScaledModel:
    """A PlsModel in stored units seen in the original ones: the same interface as PlsModel
    (n, p, reml, blocks, lower, theta0, objective, deviance_parts, solve), with original-unit theta in
    and original-unit numbers out. inner is the stored-units model the optimizer sees."""

    def __init__(self, inner: PlsModel):
        self.inner, self.cp, self.units = inner, inner.cp, inner.cp.units
        self.n, self.p, self.m, self.reml = inner.n, inner.p, inner.m, inner.reml
        self.blocks, self.lower = inner.blocks, inner.lower
        self.theta0 = self.units.theta_to_original(self.blocks, inner.theta0)
        self.offset = self.units.objective_offset(self.n, self.reml)

    def stored_theta(self, theta) -> np.ndarray:
        return self.units.theta_to_scaled(self.blocks, theta)

    def z_rms(self) -> list[np.ndarray]:
        """Root mean square of each random term's Z columns in original units (Z = Z_s T^-1)."""
        out = []
        for k, T in enumerate(self.units.T):
            Ti = np.linalg.inv(T)
            out.append(np.sqrt(np.diag(Ti.T @ self.cp.term_gram(k) @ Ti) / self.n))
        return out

    def objective(self, theta) -> float:
        return self.inner.objective(self.stored_theta(theta)) + self.offset

    def deviance_parts(self, theta) -> tuple[float, float, float]:
        """(logdet_L, pwrss, logdet_RX) at an original-unit theta, in the original units."""
        logdet_L, pwrss, logdet_RX = self.inner.deviance_parts(self.stored_theta(theta))
        w = self.units.wyy
        ldx = 2.0 * float(np.linalg.slogdet(self.units.Wxx)[1]) if self.p else 0.0
        return logdet_L, pwrss / w / w, logdet_RX - ldx

    def solve(self, theta, cond_var: bool = True) -> PlsSolution:
        sol = self.inner.solve(self.stored_theta(theta), cond_var)
        return self.units.solution_to_original(sol, self.blocks, self.n)


def original_model(inner: PlsModel):
    """The original-units view of a stored-units model: the model itself when no units were used."""
    return inner if inner.cp.units is None else ScaledModel(inner)


class EngineFit:
    """The optimum of one CrossProducts: optimizer summary and solution in the original units."""

    def __init__(self, inner: PlsModel, opt_stored: OptSummary, shift: float = 0.0):
        self.inner = inner                        # the stored-units model the optimizer saw
        self.opt_stored = opt_stored              # its summary, in stored units
        self.model = original_model(inner)        # the same objective in original units
        self.shift = shift                        # a constant the caller's likelihood adds (e.g. -log|W|)
        self._sols: dict[bool, PlsSolution] = {}
        u = inner.cp.units
        offset = shift + (u.objective_offset(inner.n, inner.reml) if u is not None else 0.0)
        if u is None and shift == 0.0:
            self.opt = opt_stored
        else:
            theta0, theta = opt_stored.theta0, opt_stored.theta
            if u is not None:
                theta0, theta = (u.theta_to_original(inner.blocks, t) for t in (theta0, theta))
            self.opt = replace(opt_stored, theta0=theta0, theta=theta, fmin=opt_stored.fmin + offset,
                               runs=[replace(r, fmin=r.fmin + offset) for r in opt_stored.runs])

    @property
    def cp(self) -> CrossProducts:
        return self.inner.cp

    @property
    def reml(self) -> bool:
        return self.inner.reml

    @property
    def theta_stored(self) -> np.ndarray:
        """theta at the optimum in the record's units (the start for a refit of a related record)."""
        return np.asarray(self.opt_stored.theta, dtype=float)

    @property
    def scaled(self) -> bool:
        """Whether the record is stored in other units than the original ones."""
        return self.inner.cp.units is not None

    @property
    def sol(self) -> PlsSolution:
        """The solution at the optimum with conditional variances, in original units."""
        return self.solution(True)

    def solution(self, cond_var: bool = True) -> PlsSolution:
        """The solution at the optimum (conditional variances if asked), in original units; computed once."""
        if cond_var not in self._sols:
            if not cond_var and True in self._sols:
                return self._sols[True]
            sol = self.inner.solve(self.opt_stored.theta, cond_var)
            u = self.inner.cp.units
            if u is not None:
                sol = u.solution_to_original(sol, self.inner.blocks, self.inner.n)
            if self.shift:
                sol = replace(sol, objective=sol.objective + self.shift)
            self._sols[cond_var] = sol
        return self._sols[cond_var]


# A residual sd below this share of the response's sd means y is (to rounding) an exact function of the
# fixed and random effects, e.g. y constant within each group of a random intercept: the likelihood
# grows without bound as sigma -> 0, and the optimizer stops only where rounding hides the growth
# (measured: sleepstudy with Reaction = Subject's number stops at sigma / sd(y) = 2e-6). Data with real
# noise at 1e-5 of their spread are not plausible measurements.
EXACT_FIT = 1e-5


def exact_fit_message(inner: PlsModel, opt: OptSummary) -> str | None:
    """A warning when the fit is an exact one (residual sd < EXACT_FIT of y's sd), else None."""
    cp, p = inner.cp, inner.p
    if cp.n < 2 or not inner.blocks or not np.isfinite(opt.fmin):
        return None
    y_var = (cp.XyXy[p, p] - cp.col_sum[p] ** 2 / cp.n) / cp.n       # in stored units, as sigma below
    if not y_var > 0:
        return None
    _, pwrss, _ = inner.deviance_parts(opt.theta)
    ratio = float(np.sqrt(max(pwrss, 0.0) / (cp.n - p if inner.reml else cp.n) / y_var))
    if ratio >= EXACT_FIT:
        return None
    return (f"the fixed and random effects fit the response exactly (residual sd {ratio:.2g} times the "
            "response's): the likelihood is unbounded there, so these estimates are not a maximum")


def fit(cp: CrossProducts, reml: bool = True, start=None, step=None, tol=None, maxeval: int = MAXEVAL,
        upper=None, like: PlsModel | None = None, shift: float = 0.0, polish: bool = False) -> EngineFit:
    """Optimise theta for a record, in its stored units.

    start: None for the full fit (optimize.fit_theta's start rule; a record without units whose
    scales are extreme is first put in diagonal units, scaling.rescaled); else a local refit from start
    (theta in the record's units, e.g. EngineFit.theta_stored of a related fit) with BOBYQA's step
    (default optimize.local_step: measured on sleepstudy's bootstrap refits, 57 evaluations instead of
    102 with lme4's wide first step, and ends that agree across y's units to 1e-6 instead of 3e-6),
    tolerances, evaluation limit and upper bounds as given. like: a model of the same random-effects
    design whose theta-independent structure the new model shares (profile points, bootstrap replicates).
    shift: a constant added to the reported objective (the optimizer does not see it).
    The full fit, and a refit with polish (the bootstrap's replicates), end with newton.newton_polish
    where the closed-form gradient applies, so that the same problem in other units or row orders lands
    on the same theta. (The profile's ML refit is not polished: its points are BOBYQA's, and measured
    with it polished the profile's ends in other units moved 1.3e-6 apart instead of < 1e-6.)
    """
    if start is None:
        cp = rescaled(cp)        # a record stored as it is, with extreme scales (a GROUP BY's)
    inner = PlsModel(cp, reml, getattr(like, "rest_part", None) if like is not None else None)
    if start is None:
        opt = fit_theta(inner)
        exact = exact_fit_message(inner, opt)
        if exact is not None:
            opt = replace(opt, converged=False, messages=list(opt.messages) + [exact])
    else:
        step = local_step(np.asarray(start, dtype=float)) if step is None else step
        opt = minimize_theta(inner.objective, start, inner.lower, maxeval=maxeval, step=step, upper=upper, tol=tol)
        if polish and opt.converged:
            opt, _ = newton_polish(inner.objective, opt, inner, BOUNDARY_TOL)
    return EngineFit(inner, opt, shift)
