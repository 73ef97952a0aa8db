"""Fit a GLMM the way glmer() does: two stages, then the Hessian for the fixed effects' covariance.

Stage 1 (glmer's nAGQ = 0): optimise theta, with beta updated inside PIRLS together with u.
Stage 2: optimise theta and beta together on the Laplace (or AGQ) deviance, u-hat by PIRLS.
Both stages use BOBYQA; stage 2 works in whitened beta coordinates x = R (beta - beta_1), with
R' R the stage-1 information for beta, so that every coordinate has about unit curvature.

glmer's covariance of beta-hat (vcov with use.hessian = TRUE, its default for GLMMs) is the beta
block of 2 H^{-1}, H the finite-difference Hessian of the deviance in (theta, beta); we do the same
(glmm.hessian: central differences in the pairs with a theta, forward ones in the beta pairs), and
the gradient from the same evaluations gives a last Newton step from BOBYQA's end point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.engine.optimize import OptSummary, minimize_theta
from lmmcli.glmm.design import GlmmDesign
from lmmcli.glmm.hessian import polish_derivatives
from lmmcli.glmm.pirls import GlmmModel, PirlsState

STAGE1_TOL = {"ftol_abs": 1e-6, "xtol_abs": 1e-5}
# loose enough to stop BOBYQA's last ~10 evaluations of confirming: the Newton step of hessian.polish
# finishes (stored cases: the same deviance to 1e-9, SEs as close to glmer's as before, within 3e-5
# except VerbAgg, 4.4e-4 either way; 1e-7 let them drift to 5e-4)
STAGE2_TOL = {"ftol_abs": 1e-8, "xtol_abs": 1e-6}
SINGULAR_TOL = 1e-4
WHITEN_RIDGE = 1e-4
DEGENERATE = 1e-6         # smallest / largest Hessian eigenvalue (whitened) below which it is degenerate


@dataclass
class GlmmFit:
    """A fitted GLMM: design, model, both optimizer summaries, the PIRLS state at the optimum, vcov."""

    formula: object
    gd: GlmmDesign
    model: GlmmModel
    nagq: int
    opt1: OptSummary
    opt2: OptSummary | None
    state: PirlsState
    objective: float                 # complete -2 log-likelihood (Laplace or AGQ) at the optimum
    vcov: np.ndarray
    warnings: list[str] = field(default_factory=list)

    @property
    def design(self):
        return self.gd.design

    @property
    def blocks(self):
        return self.gd.design.blocks

    @property
    def theta(self) -> np.ndarray:
        return self.state.theta

    @property
    def beta(self) -> np.ndarray:
        return self.state.beta

    def npar(self) -> int:
        return len(self.theta) + len(self.beta)

    def loglik(self) -> float:
        return -0.5 * self.objective

    def glmer_deviance(self) -> float:
        """The deviance glmer prints: for nAGQ > 1 it leaves out -2 * the saturated log-likelihood."""
        return self.objective - (self.model.const if self.nagq > 1 else 0.0)

    def is_singular(self, tol: float = SINGULAR_TOL) -> bool:
        return bool(np.any((self.model.lower == 0) & (self.theta < tol)))

    def b(self) -> list[np.ndarray]:
        """Conditional modes b = Lambda u, per block (levels, p)."""
        sysm = self.model.system
        bflat = sysm.lambda_n(self.state.factor, self.state.u)
        out, pos = [], 0
        for blk in self.blocks:
            k = blk.nlevels * blk.p
            out.append(bflat[pos:pos + k].reshape(blk.nlevels, blk.p))
            pos += k
        return out

    def cond_var(self) -> list[np.ndarray]:
        from lmmcli.glmm.condvar import cond_var

        return cond_var(self.model.system, self.state.factor)


def fit_glmm(formula, gd: GlmmDesign, nagq: int = 1, hessian: bool = True) -> GlmmFit:
    """glmer(): stage 1 over theta, stage 2 over (theta, beta), the Hessian, the final PIRLS state.

    hessian=False skips the finite-difference Hessian (vcov from RX instead): for bootstrap refits."""
    d = gd.design
    model = GlmmModel(d.X, d.blocks, gd.y, gd.weights, gd.offset, gd.family, gd.trials)
    model.set_glmer_start()
    opt1 = minimize_theta(model.glmer_stage1, model.theta0, model.lower, tol=STAGE1_TOL)
    st1 = model.glmer_pirls(opt1.theta, None, model.eta_start)
    model.eta0 = st1.eta
    if nagq == 0:
        vcov = np.linalg.inv(model.beta_information(st1))
        return GlmmFit(formula, gd, model, 0, opt1, None, st1, model.laplace(st1), vcov, _opt_warnings(opt1))
    R = whitening(st1.RXtRX, model.X, model.working(st1.eta, st1.mu)[0])
    k = len(opt1.theta)

    def to_beta(x):
        return st1.beta + np.linalg.solve(R, x)

    def objective(par):
        return model.stage2(par[:k], to_beta(par[k:]), nagq)

    start = np.concatenate([opt1.theta, np.zeros(len(st1.beta))])
    lower = np.concatenate([model.lower, np.full(len(st1.beta), -np.inf)])
    step = np.concatenate([np.maximum(0.1 * np.abs(opt1.theta), 0.05), np.full(len(st1.beta), 0.5)])
    opt2 = minimize_theta(objective, start, lower, step=step, tol=STAGE2_TOL)
    par, value = opt2.theta, opt2.fmin
    vcov, vwarn = None, []
    if hessian:
        par, value, g, H = polish_derivatives(objective, par, value, k, model.lower)
        vcov, vwarn = hessian_vcov(H, k, R, convergence_messages(g, H, k, R, par[:k], model.lower))
    theta, beta = par[:k], to_beta(par[k:])
    st = model.glmer_pirls(theta, beta) if nagq == 1 else model.pirls(theta, beta)
    warnings = _opt_warnings(opt1) + _opt_warnings(opt2)
    if vcov is None:
        vcov = np.linalg.inv(model.beta_information(st))
    return GlmmFit(formula, gd, model, nagq, opt1, opt2, st, value, vcov, warnings + vwarn)


def whitening(RXtRX: np.ndarray, X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """R with R' R = RXtRX + a small ridge: stage 2's coordinates x = R (beta - beta_1).

    The ridge (WHITEN_RIDGE times X'X's diagonal at the mean weight, so per column and unchanged
    by rescaling a covariate) only matters where the information for a coefficient is nearly 0, as
    under separation (the weights of its rows vanish): there plain whitening makes one unit of x a
    huge move in beta, BOBYQA's quadratic model degenerates and it stops short of the optimum."""
    ridge = WHITEN_RIDGE * float(np.mean(W)) * np.einsum("ij,ij->j", X, X)
    return np.linalg.cholesky(RXtRX + np.diag(ridge)).T


def _opt_warnings(opt: OptSummary) -> list[str]:
    out = list(opt.messages)
    if not opt.converged:
        out.append(f"the optimizer did not converge ({opt.return_code}); estimates may be unreliable")
    return out


def convergence_messages(g: np.ndarray, H: np.ndarray, k: int, R: np.ndarray, theta, lower) -> list[str]:
    """glmer's checkConv at the optimum, on the derivatives in its own coordinates (theta, beta).

    Ours are in whitened beta (x = R (beta - beta_1)), so g_beta = R' g_x and H_beta = R' H_x R; lme4
    skips the check for a singular fit. The Hessian's scale checks ("very large eigenvalue", "large
    eigenvalue ratio") depend on the covariates' units, as glmer's do: they say rescale a covariate."""
    from lmmcli.engine.convergence import Derivatives, check

    if np.any((np.asarray(lower) == 0) & (np.asarray(theta) < SINGULAR_TOL)):
        return []
    J = np.eye(len(g))
    J[k:, k:] = R
    out = check(Derivatives(np.asarray(theta), J.T @ g, J.T @ H @ J, np.zeros(len(g), bool), 0))
    return out.messages


def hessian_vcov(H, k, R, checks=()):
    """(vcov of beta from the Hessian H of the deviance, warnings); (None, [warning]) if not positive definite
    or degenerate. checks: the convergence check's messages, passed through.

    H is in (theta, whitened beta) coordinates; R' R the whitening, so beta's vcov is R^-1 V R^-T."""
    checks = list(checks)
    try:
        np.linalg.cholesky(H)
        V = 2.0 * np.linalg.inv(H)[k:, k:]
    except np.linalg.LinAlgError:
        return None, checks + ["the Hessian of the deviance is not positive definite: the fixed effects' "
                               "covariance comes from RX (as glmer falls back)"]
    curv = np.linalg.eigvalsh(H)
    if curv[0] < DEGENERATE * curv[-1]:
        # flat in one direction (separation: a coefficient runs off to infinity): its finite-difference
        # curvature is noise, and glmer finds it not positive definite and falls back to RX as well
        return None, checks + ["the Hessian of the deviance is degenerate (a direction with no curvature): the "
                               "fixed effects' covariance comes from RX (as glmer falls back)"]
    Rinv = np.linalg.inv(R)
    return Rinv @ V @ Rinv.T, checks
