"""Profile-likelihood confidence intervals, as lme4's profile() + confint() (lme4 R/profile.R).

Like lme4, the profile is of the ML deviance even for REML fits (lme4's devfun2 refits by ML first).
Variance parameters are profiled on the sd/correlation scale, with sigma a free parameter
(the deviance is not profiled over sigma):

    d(sd, cor, sigma) = log|L|^2 + pwrss(theta) / sigma^2 + n log(2 pi sigma^2),
    theta_k = D_k chol(R_k) / sigma         (D_k the sds of term k, R_k its correlation matrix).

Fixed effect beta_j is profiled by moving X_j into an offset and minimising the profiled ML deviance
of the rest over theta. zeta = sign(x - x_hat) sqrt(d(x) - d_min), stepped outward from the
estimate until |zeta| passes sqrt(qchisq(0.99, npar)); an interpolating (natural cubic) spline of zeta
is inverted (lme4's backSpline) at the normal quantiles. An end the profile does not reach becomes
the parameter's bound (0 for an sd, -1/+1 for a correlation) and none for a fixed effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.inference.backspline import back_spline, predict_back
from lmmcli.distributions import chi2_ppf, norm_ppf
from lmmcli.engine.fit import REFIT_TOL
from lmmcli.engine.fit import fit as engine_fit
from lmmcli.engine.optimize import minimize_theta
from lmmcli.engine.pls import split_theta, unscaled_vcov
from lmmcli.engine.scaling import fixed_at
from lmmcli.errors import NumericalError

ALPHA_MAX = 0.01        # lme4's alphamax: the profile goes out to the 99% simultaneous region
DELTA_CUTOFF = 1 / 8    # lme4's delta.cutoff: zeta step as a share of the cutoff
MAXPTS = 100            # lme4's maxpts: points per side of the estimate at most
MAXMULT = 10            # lme4's maxmult: a step at most this many times the last one
MINSTEP = 1e-6          # lme4's minstep: the step where the secant is flat or points backwards
NON_MONO_TOL = 1e-2     # zeta may dip this much (optimizer noise) and still be inverted, linearly


@dataclass(frozen=True)
class VarParam:
    """One variance parameter on lme4's profile scale: an sd, a correlation, or sigma."""

    kind: str              # "sd", "cor" or "sigma"
    block: int = -1
    i: int = 0             # term index (sd), or the later term of the pair (cor)
    j: int = 0             # the earlier term of the pair (cor)
    name: str = "sigma"    # lme4's name: sd_(Intercept)|Subject, cor_Days.(Intercept)|Subject, sigma

    @property
    def lower(self) -> float:
        """The smallest value the parameter can take."""
        return -1.0 if self.kind == "cor" else 0.0

    @property
    def upper(self) -> float:
        """The largest value the parameter can take."""
        return 1.0 if self.kind == "cor" else np.inf


def sd_name(term: str, group: str) -> str:
    """lme4's name of a random term's sd, e.g. sd_(Intercept)|Subject."""
    return f"sd_{term}|{group}"


def cor_name(later: str, earlier: str, group: str) -> str:
    """lme4's name of the correlation of two terms, the later one first: cor_Days.(Intercept)|Subject."""
    return f"cor_{later}.{earlier}|{group}"


def var_params(blocks) -> list[VarParam]:
    """Per random term its sds then its correlations, then sigma."""
    out = []
    for k, blk in enumerate(blocks):
        out += [VarParam("sd", k, i, i, sd_name(t, blk.group)) for i, t in enumerate(blk.terms)]
        if blk.correlated:
            out += [VarParam("cor", k, i, j, cor_name(blk.terms[i], blk.terms[j], blk.group))
                    for j in range(blk.p) for i in range(j + 1, blk.p)]
    return out + [VarParam("sigma")]


def sdcor_of(blocks, params, theta, sigma) -> np.ndarray:
    """The profile-scale vector (sds, correlations, sigma) of theta and sigma."""
    covs = [T @ T.T for T in split_theta(blocks, theta)]
    out = []
    for prm in params:
        if prm.kind == "sigma":
            out.append(sigma)
            continue
        C = covs[prm.block]
        if prm.kind == "sd":
            out.append(sigma * np.sqrt(C[prm.i, prm.i]))
        else:
            d = np.sqrt(C[prm.i, prm.i] * C[prm.j, prm.j])
            out.append(C[prm.i, prm.j] / d if d > 0 else 0.0)
    return np.array(out)


def _chol_psd(R):
    """Lower Cholesky factor of a positive semi-definite matrix; None if R is not PSD."""
    p = len(R)
    C = np.zeros_like(R)
    for j in range(p):
        d = R[j, j] - C[j, :j] @ C[j, :j]
        if d < -1e-10:
            return None
        C[j, j] = np.sqrt(max(d, 0.0))
        for i in range(j + 1, p):
            s = R[i, j] - C[i, :j] @ C[j, :j]
            if C[j, j] > 0:
                C[i, j] = s / C[j, j]
            elif abs(s) > 1e-10:
                return None
    return C


class SdCorMap:
    """theta from the profile-scale vector: T_k = D_k chol(R_k) / sigma, laid out as theta."""

    def __init__(self, blocks, params):
        self.layout = []       # per block: p, sd positions, (cor positions, rows, cols), theta rows, cols
        for k, blk in enumerate(blocks):
            sd = np.array([w for w, prm in enumerate(params) if prm.kind == "sd" and prm.block == k])
            cor = [(w, prm.i, prm.j) for w, prm in enumerate(params) if prm.kind == "cor" and prm.block == k]
            cor = tuple(np.array(v, dtype=int) for v in zip(*cor)) if cor else None
            rows, cols = (np.array(v, dtype=int) for v in zip(*blk.theta_index()))
            self.layout.append((blk.p, sd, cor, rows, cols))

    @staticmethod
    def _chol_cor(p, cor, par):
        """The Cholesky factor of a term's correlation matrix (None if it is not one)."""
        w, i, j = cor
        if p == 2:
            r = par[w[0]]
            return np.array([[1.0, 0.0], [r, np.sqrt(1.0 - r * r)]]) if abs(r) <= 1 else None
        R = np.eye(p)
        R[i, j] = R[j, i] = par[w]
        try:
            return np.linalg.cholesky(R)
        except np.linalg.LinAlgError:
            return _chol_psd(R)

    def theta(self, par):
        """theta for par, or None where the correlations are not a valid correlation matrix."""
        sigma = par[-1]
        out = []
        for p, sd, cor, rows, cols in self.layout:
            d = par[sd] / sigma
            if cor is None:
                out.append(d)
                continue
            C = self._chol_cor(p, cor, par)
            if C is None:
                return None
            out.append((d[:, None] * C)[rows, cols])
        return np.concatenate(out)


# -- a bounded local optimizer for warm-started profile points -------------------------------------
# A profile point needs the deviance to ~1e-8 (zeta is its square root, interpolated), not the fit's 1e-10.
PROFILE_TOL = {"ftol_abs": 1e-8, "xtol_rel": 1e-6}
PROFILE_MAXEVAL = 5000


def minimize_bounded(fun, x0, lower, upper, rel_step=0.05, unit=None):
    """(fmin, xmin) of fun over lower <= x <= upper by BOBYQA, from a nearby start (small first steps).

    unit: each coordinate's natural size (default 1); BOBYQA works on x / unit, so its steps and
    tolerances mean the same whatever the data's magnitudes (an sd of 2.5e-8 is not stepped by 1e-3).
    """
    unit = np.ones(len(np.atleast_1d(x0))) if unit is None else np.asarray(unit, dtype=float)
    x0 = np.clip(np.asarray(x0, dtype=float), lower, upper)
    if x0.size == 0:
        return float(fun(x0)), x0
    z0, zlo, zhi = x0 / unit, lower / unit, upper / unit
    opt = minimize_theta(lambda z: fun(z * unit), z0, zlo, maxeval=PROFILE_MAXEVAL,
                         step=local_steps(z0, zlo, zhi, rel_step), upper=zhi, tol=PROFILE_TOL)
    return opt.fmin, opt.theta * unit


def minimize_with_one_held(deviance, opt, w, x, start, lower, upper, unit):
    """(fmin, rest) of deviance(par) with par[w] held at x and the others (from start, within lower/upper
    of the others) free: one profile point, for the linear and the GLMM profiles alike."""
    keep = np.arange(len(opt)) != w
    par = np.array(opt, dtype=float)
    par[w] = x

    def f(rest):
        par[keep] = rest
        return deviance(par)

    return minimize_bounded(f, start, lower[keep], upper[keep], unit=unit[keep])


def local_steps(x0, lower, upper, rel_step=0.05) -> np.ndarray:
    """BOBYQA's first steps for a warm start: rel_step of each |x0| (at least 1e-3), never past a bound."""
    room = np.minimum(upper - x0, x0 - lower)
    step = np.maximum(rel_step * np.abs(x0), 1e-3)
    return np.where(room > 0, np.minimum(step, np.maximum(room, 1e-4)), step)


# -- stepping outward (lme4's nextpar / fillmat) -----------------------------------------------------
@dataclass
class Point:
    par: float
    zeta: float
    state: np.ndarray      # the other parameters at the optimum: the next point's start


def _next_par(a: Point, b: Point, delta, lowcut, upcut) -> float:
    """The next value: a zeta step of delta along the secant through the last two points."""
    num, denom = b.par - a.par, b.zeta - a.zeta
    if not np.isfinite(denom) or denom == 0:
        step = MINSTEP
    else:
        step = delta * num / denom
        if step < 0:
            step = MINSTEP
        elif abs(step) > MAXMULT * abs(num):
            step = MAXMULT * abs(num)
    return float(min(upcut, max(lowcut, b.par + np.sign(num) * step)))


def _start(a: Point, b: Point, x: float) -> np.ndarray:
    """The other parameters at x, extrapolated along the last two points (a warm start)."""
    if b.par == a.par or len(a.state) != len(b.state):
        return b.state
    return b.state + (b.state - a.state) * (x - b.par) / (b.par - a.par)


def _fill(rows, zeta_at, delta, cutoff, lowcut, upcut):
    """Add points until |zeta| passes the cutoff, a bound is reached, or zeta fails."""
    while len(rows) < MAXPTS:
        last = rows[-1]
        if not (lowcut < last.par < upcut and np.isfinite(last.zeta) and abs(last.zeta) <= cutoff):
            break
        x = _next_par(rows[-2], last, delta, lowcut, upcut)
        rows.append(zeta_at(x, _start(rows[-2], last, x)))
    return [r for r in rows if np.isfinite(r.zeta)]


def walk(zeta_at, est: Point, shift: float, delta, cutoff, lowcut=-np.inf, upcut=np.inf):
    """All profile points on both sides of the estimate, sorted by parameter value."""
    first = zeta_at(shift, est.state)
    up = _fill([est, first], zeta_at, delta, cutoff, lowcut, upcut)
    down = _fill([first, est], zeta_at, delta, cutoff, lowcut, upcut) if est.par > lowcut else [first, est]
    pts = {r.par: r for r in up + down}
    return [pts[k] for k in sorted(pts)]


# -- inverting zeta (R's interpSpline + backSpline, see backspline.py) -------------------------------
def invert(points, zq, name: str, warnings: list[str]):
    """Parameter values where zeta equals each of zq (NaN where the profile does not reach)."""
    par = np.array([p.par for p in points])
    zeta = np.array([p.zeta for p in points])
    if len(par) >= 2 and np.all(np.diff(zeta) > 0):
        knots, coef = back_spline(par, zeta)
        return [predict_back(knots, coef, z) for z in zq]
    if len(par) < 2 or np.min(np.diff(zeta)) < -NON_MONO_TOL:
        warnings.append(f"non-monotonic profile for {name}; no interval")
        return [np.nan for _ in zq]
    warnings.append(f"bad spline fit for {name}: falling back to linear interpolation")
    o = np.argsort(zeta, kind="stable")
    return [float(np.interp(z, zeta[o], par[o])) if zeta[o][0] <= z <= zeta[o][-1] else np.nan for z in zq]


# -- the profiler ----------------------------------------------------------------------------------
class Profiler:
    """The ML refit of a model and zeta functions for each of its parameters."""

    def __init__(self, fm):
        self.blocks = fm.blocks
        # the ML refit, from the fit's optimum; everything below works in the fit's stored units
        # (well-conditioned whatever the data's magnitudes) and reports in the original ones
        self.ml = engine_fit(fm.cp, reml=False, start=fm.engine.theta_stored, like=fm.engine.inner, tol=REFIT_TOL)
        self.inner, self.units = self.ml.inner, fm.cp.units
        self.sol = self.ml.solution(cond_var=False)
        self.base = self.ml.opt_stored.fmin           # the ML deviance's minimum, in stored units
        self.n = self.inner.n
        self.params = var_params(self.blocks)
        self.map = SdCorMap(self.blocks, self.params)
        self.opt = sdcor_of(self.blocks, self.params, self.sol.theta, self.sol.sigma)
        self.lower = np.array([prm.lower for prm in self.params])
        self.upper = np.array([prm.upper for prm in self.params])
        self.unit = np.array([1.0 if prm.kind == "cor" else (abs(v) if prm.kind == "sd" and v != 0 else self.sol.sigma)
                              for prm, v in zip(self.params, self.opt)])
        self.beta_se = self.sol.sigma * np.sqrt(np.diag(unscaled_vcov(self.sol.RX)))      # of the ML fit
        npar = len(self.params) + len(self.sol.beta)
        self.cutoff = float(np.sqrt(chi2_ppf(1 - ALPHA_MAX, npar)))
        self.delta = self.cutoff * DELTA_CUTOFF

    def deviance(self, par) -> float:
        """The ML deviance at a profile-scale vector (not profiled over sigma), in stored units
        (the original one less a constant, so zeta is the same)."""
        sigma = par[-1]
        theta = self.map.theta(par) if sigma > 0 else None
        if theta is None or not np.all(np.isfinite(theta)):
            return np.inf
        try:
            if self.units is not None:
                theta, sigma = self.units.theta_to_scaled(self.blocks, theta), sigma * self.units.wyy
            logdet_L, pwrss, _ = self.inner.deviance_parts(theta)
        except (np.linalg.LinAlgError, ArithmeticError, ValueError, NumericalError):
            return np.inf
        s2 = sigma * sigma
        return logdet_L + pwrss / s2 + self.n * np.log(2 * np.pi * s2)

    def _zeta(self, dev, x, est) -> float:
        """Signed square root of the deviance's rise over the optimum, + above the estimate est."""
        return float(np.sign(x - est) * np.sqrt(max(0.0, dev - self.base)))

    def var_zeta(self, w: int):
        """zeta_at(x, start) for variance parameter w: minimise over the others from start."""
        def zeta_at(x, start):
            dev, rest = minimize_with_one_held(self.deviance, self.opt, w, x, start, self.lower, self.upper,
                                               self.unit)
            return Point(x, self._zeta(dev, x, self.opt[w]) if np.isfinite(dev) else np.nan, rest)

        return zeta_at

    def fixed_zeta(self, j: int):
        """zeta_at(x, start) for beta_j: X_j moved into the offset, theta re-optimised from start (stored units)."""
        lower = self.inner.lower
        upper = np.full(len(lower), np.inf)
        est = self.sol.beta[j]

        def zeta_at(x, start):
            start = np.clip(np.asarray(start, dtype=float), lower, upper)
            fit = engine_fit(fixed_at(self.ml.cp, j, x), reml=False, start=start, like=self.inner,
                             step=local_steps(start, lower, upper), tol=PROFILE_TOL, maxeval=PROFILE_MAXEVAL,
                             upper=upper)
            dev, theta = fit.opt_stored.fmin, fit.opt_stored.theta
            return Point(x, self._zeta(dev, x, est) if np.isfinite(dev) else np.nan, theta)

        return zeta_at

    def var_points(self, w: int):
        """The profile of variance parameter w: points out to the cutoff or its bound on both sides."""
        est = float(self.opt[w])
        prm = self.params[w]
        start = Point(est, 0.0, np.delete(self.opt, w))
        shift = 1e-3 if est == 0 else est * 1.01
        return walk(self.var_zeta(w), start, shift, self.delta, self.cutoff, prm.lower, prm.upper)

    def fixed_points(self, j: int):
        """The profile of beta_j: points out to the cutoff on both sides, the first a delta of se away."""
        est = float(self.sol.beta[j])
        start = Point(est, 0.0, self.ml.theta_stored.copy())
        shift = est + self.delta * self.beta_se[j]
        return walk(self.fixed_zeta(j), start, shift, self.delta, self.cutoff)


def profile_bounds(fm, level: float = 0.95) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """lme4's confint(method = "profile"): {name: (lower, upper)} for every variance parameter
    (lme4's names) and fixed effect (its term), plus warnings."""
    from lmmcli.engine.blas import single_threaded

    with single_threaded():       # hundreds of small optimisations (see blas.py)
        return _bounds(fm, level)


def _bounds(fm, level):
    """profile_bounds without the BLAS thread setting."""
    pr = Profiler(fm)
    a = (1 - level) / 2
    zq = [norm_ppf(a), norm_ppf(1 - a)]
    out, warnings = {}, []
    for w, prm in enumerate(pr.params):
        lo, hi = invert(pr.var_points(w), zq, prm.name, warnings)
        out[prm.name] = (prm.lower if np.isnan(lo) else lo, prm.upper if np.isnan(hi) else hi)
    for j, term in enumerate(fm.design.fixed_names):
        lo, hi = invert(pr.fixed_points(j), zq, term, warnings)
        out[term] = (lo, hi)
    return out, warnings
