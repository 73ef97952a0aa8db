"""Profile-likelihood intervals for a GLMM, as lme4's confint(method = "profile") on a glmer fit.

The parameters are glmer's stage-2 ones on lme4's profile scale: each random term's sds and
correlations (no sigma: binomial and Poisson have none), then the fixed effects. The deviance is
the fit's own objective (glmer's Laplace deviance, or AGQ for nAGQ > 1). For each parameter, fixed
at a value x, the deviance is minimised over all the others; zeta(x) = sign(x - x_hat) sqrt(d(x) -
d_min) is stepped outward until |zeta| passes sqrt(qchisq(0.99, npar)) and inverted by the same
spline as the linear profile (inference/profile.py, whose stepping and inversion this reuses).
"""

from __future__ import annotations

import numpy as np

from lmmcli.distributions import chi2_ppf, norm_ppf
from lmmcli.glmm.fit import GlmmFit
from lmmcli.inference.confint import Intervals
from lmmcli.inference.profile import (ALPHA_MAX, DELTA_CUTOFF, Point, SdCorMap, VarParam, invert,
                                      minimize_with_one_held, sdcor_of, var_params, walk)


class GlmmProfiler:
    """zeta functions of a fitted GLMM's parameters (sds and correlations, then beta)."""

    def __init__(self, fm: GlmmFit):
        self.fm, self.model = fm, fm.model
        self.params = [prm for prm in var_params(fm.blocks) if prm.kind != "sigma"]
        self.map = SdCorMap(fm.blocks, self.params + [VarParam("sigma")])
        self.nvar = len(self.params)
        sdcor = sdcor_of(fm.blocks, self.params, fm.theta, 1.0)
        self.opt = np.concatenate([sdcor, fm.beta])
        se = np.sqrt(np.diag(fm.vcov))
        self.lower = np.concatenate([[prm.lower for prm in self.params], np.full(len(fm.beta), -np.inf)])
        self.upper = np.concatenate([[prm.upper for prm in self.params], np.full(len(fm.beta), np.inf)])
        # each coordinate's natural size: BOBYQA steps in these units (an sd by its value, beta by its SE)
        self.unit = np.concatenate([[1.0 if prm.kind == "cor" or v == 0 else abs(v)
                                     for prm, v in zip(self.params, sdcor)], np.where(se > 0, se, 1.0)])
        self.base = fm.objective
        self.cutoff = float(np.sqrt(chi2_ppf(1 - ALPHA_MAX, len(self.opt))))
        self.delta = self.cutoff * DELTA_CUTOFF

    def deviance(self, par) -> float:
        """The fit's objective at a profile-scale vector (sds, correlations, beta)."""
        theta = self.map.theta(np.concatenate([par[:self.nvar], [1.0]]))
        if theta is None or not np.all(np.isfinite(theta)):
            return np.inf
        return self.model.stage2(theta, par[self.nvar:], self.fm.nagq)

    def zeta_at(self, w: int):
        """zeta_at(x, start) for parameter w: the deviance minimised over the others from start."""
        est = self.opt[w]

        def at(x, start):
            dev, rest = minimize_with_one_held(self.deviance, self.opt, w, x, start, self.lower, self.upper,
                                               self.unit)
            zeta = float(np.sign(x - est) * np.sqrt(max(0.0, dev - self.base))) if np.isfinite(dev) else np.nan
            return Point(x, zeta, rest)

        return at

    def points(self, w: int):
        """The profile of parameter w out to the cutoff (or its bound) on both sides."""
        est = float(self.opt[w])
        start = Point(est, 0.0, np.delete(self.opt, w))
        if w < self.nvar:
            shift = 1e-3 if est == 0 else est * 1.01
        else:
            shift = est + self.delta * self.unit[w]
        return walk(self.zeta_at(w), start, shift, self.delta, self.cutoff, self.lower[w], self.upper[w])

    def names(self) -> list[str]:
        return [prm.name for prm in self.params] + list(self.fm.design.fixed_names)


def profile_intervals(fm: GlmmFit, level: float = 0.95) -> Intervals:
    """Profile intervals by lme4's names (sd_(Intercept)|herd, ..., then the fixed-effect terms).

    An end the profile does not reach is the parameter's bound for an sd or correlation (as lme4's
    confint reports 0 for an sd whose profile hits it) and none for a fixed effect."""
    from lmmcli.engine.blas import single_threaded

    pr = GlmmProfiler(fm)
    a = (1 - level) / 2
    zq = [norm_ppf(a), norm_ppf(1 - a)]
    bounds, warnings = {}, []
    with single_threaded():        # many small optimisations
        for w, name in enumerate(pr.names()):
            lo, hi = invert(pr.points(w), zq, name, warnings)
            if w < pr.nvar:
                lo = pr.lower[w] if np.isnan(lo) else lo
                hi = pr.upper[w] if np.isnan(hi) else hi
            bounds[name] = (float(lo), float(hi))
    return Intervals("profile", level, bounds, warnings)


def attach_profile(result, fm: GlmmFit, level: float = 0.95):
    """Profile intervals onto the result's fixed effects, sds and correlations."""
    from lmmcli.inference.confint import attach

    groups = {blk.name: blk.group for blk in fm.blocks if blk.name}
    attach(result, profile_intervals(fm, level), groups)
    return result
