"""Degrees of freedom and p-values for the fixed effects, as lmerTest's summary table reports them.

Methods (`DF_METHODS`):
    satterthwaite   lmerTest's default (Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13)):
                    df_j = 2 V_jj^2 / (g' A g), V = Var(beta) = sigma^2 (RX'RX)^{-1} at theta,
                    g = dV_jj / d varpar, A = 2 H^+ with H the Hessian of the deviance (REML or ML,
                    as the fit) in varpar = (theta, sigma). Where the engine has the deviance's
                    gradient in closed form (engine.gradient: one random term, or scalar crossed and
                    nested terms, off the boundary), H and g are central differences of it and of
                    Var(beta) at theta +- a small step: 2k solutions. Elsewhere both derivatives are
                    finite differences of the deviance with Richardson extrapolation (~12 k^2 solutions).
    kenward-roger   pbkrtest's adjusted covariance and df (see kenward_roger.py); REML fits only.
    residual        n - p for every coefficient.
    none            no df and no p-values (lme4's plain t values).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from lmmcli.distributions import t_two_sided_p
from lmmcli.engine import gradient
from lmmcli.engine.pls import unscaled_vcov as pls_unscaled_vcov
from lmmcli.errors import UsageError
from lmmcli.results import FitResult

DF_METHODS = ("satterthwaite", "kenward-roger", "residual", "none")
HESS_REL, MIN_STEP, RICHARDSON = 0.1, 1e-4, 4   # numDeriv's hessian defaults; the Jacobian takes the same steps
EIGEN_TOL = 1e-8      # lmerTest's tolerance for H's eigenvalues (here of H scaled to a unit diagonal)


@dataclass
class FixedInference:
    """df, standard errors (adjusted for Kenward-Roger) and p-values of the fixed effects."""

    method: str
    std_error: np.ndarray
    df: np.ndarray | None
    vcov: np.ndarray


# -- the deviance and Var(beta) as functions of varpar = (theta, sigma) --------------------------
class Solves:
    """model.solve memoised by theta: the Hessian's points and the Jacobian's share their thetas,
    and every change of sigma alone reuses one solve."""

    def __init__(self, model):
        self.model, self._cache = model, {}

    def __call__(self, theta):
        theta = np.asarray(theta, dtype=float) + 0.0     # + 0.0 turns -0.0 into 0.0 for the key
        key = theta.tobytes()
        if key not in self._cache:
            # kept without the random effects: the deviance and RX are all that is read, and at 1e6
            # levels each solution's b and u are 32 MB (a Hessian has dozens of points)
            self._cache[key] = dataclasses.replace(self.model.solve(theta, cond_var=False), b=[], u=[])
        return self._cache[key]

    @property
    def count(self) -> int:
        """How many distinct thetas have been solved."""
        return len(self._cache)


def deviance_varpar(model, varpar, solve=None) -> float:
    """The (REML or ML) deviance at (theta, sigma), sigma not profiled out (lmerTest's devfun_vp)."""
    theta, sigma2 = np.asarray(varpar[:-1], dtype=float), float(varpar[-1]) ** 2
    sol = (solve or model.solve)(theta)
    log2pis2 = np.log(2.0 * np.pi * sigma2)
    dev = sol.logdet_L + sol.pwrss / sigma2 + model.n * log2pis2
    if model.reml:
        dev += sol.logdet_RX - model.p * log2pis2
    return float(dev)


def unscaled_vcov(model, theta, solve=None) -> np.ndarray:
    """(RX'RX)^{-1} at theta: Var(beta) / sigma^2."""
    return pls_unscaled_vcov((solve or model.solve)(np.asarray(theta, dtype=float)).RX)


# -- finite differences ------------------------------------------------------------------------
def _steps(x, rel: float, scale=None) -> np.ndarray:
    """Initial step per coordinate: relative to |x|, but never below MIN_STEP times the coordinate's scale."""
    return np.maximum(rel * np.abs(x), MIN_STEP * (1.0 if scale is None else np.asarray(scale)))


def _richardson(estimates):
    """Extrapolate estimates at steps h, h/2, h/4, ... (each with error O(h^2) in powers of h^2)."""
    a = list(estimates)
    for m in range(1, len(a)):
        a = [(4.0 ** m * a[k + 1] - a[k]) / (4.0 ** m - 1.0) for k in range(len(a) - 1)]
    return a[0]


def hessian(f, x, rel: float = HESS_REL, r: int = RICHARDSON, scale=None) -> np.ndarray:
    """Hessian of a scalar function by central second differences, Richardson-extrapolated."""
    x = np.asarray(x, dtype=float)
    k, f0, h0 = len(x), f(x), _steps(x, rel, scale)
    H = np.empty((k, k))
    halvings = [h0 / 2.0 ** s for s in range(r)]
    for i in range(k):
        e = np.eye(k)[i]
        H[i, i] = _richardson([(f(x + e * h[i]) - 2 * f0 + f(x - e * h[i])) / h[i] ** 2 for h in halvings])
    for i in range(k):
        for j in range(i):
            H[i, j] = H[j, i] = _richardson([_mixed_difference(f, x, f0, H, h, i, j) for h in halvings])
    return H


def _mixed_difference(f, x, f0, H, h, i, j) -> float:
    """d2f/dxi dxj from f(x +- (hi ei + hj ej)) and the known diagonal (numDeriv's genD scheme)."""
    step = np.zeros_like(x)
    step[i], step[j] = h[i], h[j]
    total = f(x + step) - 2 * f0 + f(x - step) - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2
    return total / (2 * h[i] * h[j])


def jacobian(g, x, rel: float, r: int = RICHARDSON, scale=None) -> list[np.ndarray]:
    """d g / d x_i for an array-valued g, one array per coordinate, by Richardson-extrapolated central differences."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x, rel, scale)
    out = []
    for i in range(len(x)):
        e = np.eye(len(x))[i]
        out.append(_richardson([(g(x + e * h) - g(x - e * h)) / (2 * h) for h in h0[i] / 2.0 ** np.arange(r)]))
    return out


# -- Satterthwaite ------------------------------------------------------------------------------
theta_scales = gradient.theta_scale      # the natural size of each theta element, for difference steps


def unit_diagonal(H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D^-1/2 H D^-1/2 symmetrised, S = D^-1/2 1 1' D^-1/2), D = diag H (entries <= 0 taken as 1).

    The scaled matrix has no units, so eigenvalue cut-offs mean the same whatever the units of y and of
    the covariates; S * inverse(scaled) is the inverse of H."""
    d = np.diag(H)
    s = 1.0 / np.sqrt(np.where(d > 0, d, 1.0))
    S = np.outer(s, s)
    return (H + H.T) / 2 * S, S


def positive_part_inverse(H: np.ndarray, tol: float = EIGEN_TOL) -> np.ndarray:
    """H^+ over H's positive eigenvalues, judged on H at a unit diagonal (lmerTest judges H itself; the
    same for moderate units)."""
    scaled, S = unit_diagonal(H)
    evals, evecs = np.linalg.eigh(scaled)
    keep = evals > tol
    return S * ((evecs[:, keep] / evals[keep]) @ evecs[:, keep].T)


def varpar_covariance(model, theta, sigma, solve=None) -> np.ndarray:
    """A = 2 H^+: the asymptotic covariance of varpar, H the Hessian of the deviance in (theta, sigma)."""
    scale = np.append(theta_scales(model), sigma)
    H = hessian(lambda v: deviance_varpar(model, v, solve), np.append(theta, sigma), scale=scale)
    return 2.0 * positive_part_inverse(H)


def vcov_gradients(model, theta, sigma, solve=None) -> list[np.ndarray]:
    """dVar(beta)/d varpar: theta by finite differences, sigma exactly (Var is sigma^2 times a function of theta).
    The steps are the Hessian's, so that with a shared `Solves` no theta is solved twice."""
    U = unscaled_vcov(model, theta, solve)
    grads = jacobian(lambda t: unscaled_vcov(model, t, solve), theta, rel=HESS_REL,
                     scale=theta_scales(model)) if len(theta) else []
    return [sigma ** 2 * G for G in grads] + [2.0 * sigma * U]


@dataclass
class VarparPieces:
    """lmerTest's vcov_beta, vcov_varpar (A) and Jac_list (grads): what the Satterthwaite df of any
    contrast needs."""

    vcov: np.ndarray
    A: np.ndarray
    grads: list

    def df(self, L) -> float:
        """contest1D's df of the contrast L beta (L one row): 2 (L V L')^2 / (g' A g), g_i = L dV_i L'."""
        L = np.ravel(np.asarray(L, dtype=float))
        g = np.array([L @ G @ L for G in self.grads])
        denom = g @ self.A @ g
        return float(2.0 * (L @ self.vcov @ L) ** 2 / denom) if denom > 0 else float("inf")


def varpar_pieces(model, theta, sigma, vcov: np.ndarray) -> VarparPieces:
    """A and the gradients of Var(beta) at (theta, sigma), sharing one memo of solves."""
    closed = closed_form_pieces(model, theta, sigma, full=True)
    if closed is not None:
        return VarparPieces(vcov, *closed)
    solve = Solves(model)
    return VarparPieces(vcov, varpar_covariance(model, theta, sigma, solve),
                        vcov_gradients(model, theta, sigma, solve))


def closed_form_pieces(model, theta, sigma, full: bool):
    """(A, dVar(beta)/d varpar) from central differences of engine.gradient's closed-form gradient (2k + 1
    solutions, shared with the convergence check), or None where it does not apply. The deviance in
    varpar is a(theta) + pwrss(theta) / sigma^2 + c log(2 pi sigma^2), a = logdet_L (+ logdet_RX for
    REML), c = n (n - p for REML), so its sigma derivatives are exact. full: the gradients of Var(beta)
    as p x p matrices (for any contrast), else their diagonals."""
    view = gradient.OriginalUnits.of(model)
    c = view.curvature(theta) if view is not None and len(theta) else None
    if c is None:
        return None
    k, s2, g0 = len(theta), sigma ** 2, c.center

    def d_dev(g):                        # the varpar deviance's gradient in theta at sigma
        return g.d_logdet_L + (g.d_logdet_RX if model.reml else 0.0) + g.d_pwrss / s2

    H = np.empty((k + 1, k + 1))
    H[:k, :k] = c.hessian(d_dev)
    H[:k, k] = H[k, :k] = -2.0 * g0.d_pwrss / sigma ** 3
    dof = model.n - model.p if model.reml else model.n
    H[k, k] = 6.0 * g0.pwrss / sigma ** 4 - 2.0 * dof / s2
    dU = [(pls_unscaled_vcov(a.RX) - pls_unscaled_vcov(b.RX)) / (2.0 * h) for a, b, h in zip(c.plus, c.minus, c.h)]
    U = pls_unscaled_vcov(g0.RX)
    grads = [s2 * d for d in dU] + [2.0 * sigma * U]
    return 2.0 * positive_part_inverse(H), grads if full else [np.diag(G) for G in grads]


class WideSolves(Solves):
    """Solves for a wide model (engine.wide): the deviance's pieces and diag Var(beta) in q dimensions,
    memoised by theta; for a model in other stored units (engine.fit.ScaledModel) mapped to the
    original ones as ScaledModel.deviance_parts and Scaling.RX_to_original map them."""

    def __init__(self, model, w):
        super().__init__(model)
        self.wide = w
        self.units = getattr(model, "units", None) if getattr(model, "inner", model) is not model else None
        if self.units is not None:
            self.Wxx, self.wyy = self.units.Wxx, self.units.wyy
            self.ldx = 2.0 * float(np.linalg.slogdet(self.Wxx)[1]) if model.p else 0.0

    def stored(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float) + 0.0
        return theta if self.units is None else self.model.stored_theta(theta)

    def __call__(self, theta):
        theta = np.asarray(theta, dtype=float) + 0.0
        key = theta.tobytes()
        if key not in self._cache:
            parts = self.wide.parts(self.stored(theta))
            if self.units is not None:
                parts = type(parts)(parts.logdet_L, parts.pwrss / self.wyy ** 2, parts.logdet_RX - self.ldx)
            self._cache[key] = parts
        return self._cache[key]

    def vcov_diag(self, theta) -> np.ndarray:
        """diag (RX'RX)^{-1} at an original-units theta (RX'RX = Wxx^-T RX_s'RX_s Wxx^-1)."""
        return self.wide.vcov_diag(self.stored(theta), None if self.units is None else self.Wxx)

    def vcov(self, theta) -> np.ndarray:
        """(RX'RX)^{-1}, the whole p x p matrix, at an original-units theta."""
        return self.wide.vcov(self.stored(theta), None if self.units is None else self.Wxx)


def _unscaled_vcov_diag(model, theta, solve) -> np.ndarray:
    """diag (RX'RX)^{-1} at theta: from the full matrix, or (wide models) in O(p q^2)."""
    if isinstance(solve, WideSolves):
        return solve.vcov_diag(theta)
    return np.diag(unscaled_vcov(model, theta, solve))


def wide_solves(model):
    """WideSolves for a wide model (or its original-units view), else None."""
    from lmmcli.engine import wide

    w = wide.for_model(getattr(model, "inner", model))
    return None if w is None else WideSolves(model, w)


def satterthwaite_df(model, theta, sigma, vcov: np.ndarray) -> np.ndarray:
    """Satterthwaite df of each single coefficient, lmerTest's contest1D: 2 V_jj^2 / (g_j' A g_j).

    Only the diagonals of Var(beta) and of its gradients enter, so only those are differenced (the
    same steps and numbers as varpar_pieces); a wide model never forms a p x p matrix per theta."""
    closed = closed_form_pieces(model, theta, sigma, full=False)
    if closed is not None:
        A, D = closed[0], np.array(closed[1])
    else:
        solve = wide_solves(model) or Solves(model)
        A = varpar_covariance(model, theta, sigma, solve)
        U = _unscaled_vcov_diag(model, theta, solve)
        grads = jacobian(lambda t: _unscaled_vcov_diag(model, t, solve), theta, rel=HESS_REL,
                         scale=theta_scales(model)) if len(theta) else []
        D = np.array([sigma ** 2 * G for G in grads] + [2.0 * sigma * U])       # (k + 1, p)
    denom = np.einsum("ij,ik,kj->j", D, A, D)
    v = np.diag(vcov)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2.0 * v ** 2 / np.where(denom > 0, denom, 1.0), np.inf)


# -- the entry points -----------------------------------------------------------------------------
def check_method(method: str) -> str:
    """The method name, normalised; a UsageError for an unknown one."""
    name = method.strip().lower().replace("_", "-")
    if name not in DF_METHODS:
        raise UsageError(f"unknown --df method '{method}'", hint=f"use one of: {', '.join(DF_METHODS)}")
    return name


def fixed_inference(fm, method: str = "satterthwaite") -> FixedInference:
    """df (and for Kenward-Roger adjusted standard errors) of every fixed effect of a FittedModel."""
    method = check_method(method)
    if method == "kenward-roger":
        # imported when asked: it loads scipy.sparse, which a plain fit does not need
        from lmmcli.inference.kenward_roger import kenward_roger

        Vadj, df = kenward_roger(fm)
        return FixedInference(method, np.sqrt(np.diag(Vadj)), df, Vadj)
    V = fm.vcov()
    n, p = fm.design.n, len(fm.sol.beta)
    if method == "satterthwaite":
        df = satterthwaite_df(fm.model, fm.sol.theta, fm.sol.sigma, V) if p else np.zeros(0)
    else:
        df = np.full(p, float(n - p)) if method == "residual" else None
    return FixedInference(method, np.sqrt(np.diag(V)), df, V)


def with_inference(result: FitResult, inf: FixedInference) -> FitResult:
    """A copy of the FitResult whose fixed effects carry df and p-values, and whose extra names the method."""
    rows = []
    for i, fe in enumerate(result.fixed_effects):
        se = float(inf.std_error[i])
        t = fe.estimate / se if 0 < se < math.inf else float("nan")    # an overflowed se: no t (fit warns)
        df = None if inf.df is None or not math.isfinite(se) else float(inf.df[i])
        p = None if df is None else float(t_two_sided_p(t, df))
        rows.append(dataclasses.replace(fe, std_error=se, statistic=t, df=df, p_value=p))
    extra = dict(result.extra, df_method=inf.method)
    if inf.method == "kenward-roger":
        extra["vcov_adjusted"] = inf.vcov.tolist()
    return dataclasses.replace(result, fixed_effects=rows, extra=extra)


def infer(fm, result: FitResult, method: str = "satterthwaite") -> FitResult:
    """fixed_inference + with_inference: what `lmm fit --df METHOD` reports."""
    return with_inference(result, fixed_inference(fm, method))
