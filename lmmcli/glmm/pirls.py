"""Penalized iteratively reweighted least squares (PIRLS) and the Laplace / adaptive Gauss-Hermite deviance.

For a GLMM eta = offset + X beta + Z Lambda(theta) u, u ~ N(0, I), the conditional modes u-hat
minimise the penalized deviance  pdev(u) = sum_i dev_i(mu_i) + ||u||^2.  Each PIRLS step is a
Fisher-scoring (Newton with expected weights W) step for u (or for u and beta together):

    M delta_u = Lambda' Z' W r - u,   M = Lambda' Z' W Z Lambda + I,   r = (y - mu) / mu_eta

with step halving when pdev does not decrease, and stops when the predicted decrease (the Newton
decrement c' M^{-1} c) is below PIRLS_TOL. The Laplace approximation of -2 log-likelihood is then

    laplace(theta, beta) = log |L|^2 + ||u-hat||^2 + sum_i dev_i + C,

where C = -2 * (the saturated model's log-likelihood) makes it a complete -2 log-likelihood (glmer's
Laplace value, which uses family$aic). With a single scalar random term, adaptive Gauss-Hermite
quadrature (nAGQ > 1) integrates each group's likelihood over knots placed at u-hat +/- the
conditional sd (lme4's glmerAGQ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.engine.pls import theta_lower, theta_start
from lmmcli.errors import NumericalError
from lmmcli.glmm.response import Response
from lmmcli.glmm.system import Factor, WeightedSystem

# u-hat is converged when the largest step in u is below this: log|L|^2 moves to first order with u
# (through the weights), so the objective is as exact as u-hat -- finite-difference Hessians need ~1e-9
PIRLS_TOL = 1e-10
PIRLS_MAXIT = 60
MAX_HALVINGS = 30
GLM_MAXIT = 50
GLMER_TOL = 1e-7           # glmerControl(tolPwrss)
GLMER_MAXIT = 100


@dataclass
class PirlsState:
    """PIRLS at one (theta, beta): the conditional modes, the fit and the factor at the final weights."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray               # (q,) spherical random effects, ordered as Z's columns
    eta: np.ndarray
    mu: np.ndarray
    dev: float                  # sum of deviance residuals
    factor: Factor
    iterations: int
    converged: bool
    RXtRX: np.ndarray | None = None   # X'WX - X'WZ Lambda M^{-1} Lambda'Z'WX (joint PIRLS only)

    @property
    def pdev(self) -> float:
        return self.dev + float(self.u @ self.u)


class GlmmModel:
    """The data of a GLMM and its objective functions of theta (stage 1) and of (theta, beta) (stage 2)."""

    def __init__(self, X, blocks, y, wt, offset, family, trials=None):
        self.X = np.ascontiguousarray(X, dtype=float)
        self.n, self.p = self.X.shape
        self.y, self.wt, self.offset = (np.asarray(a, dtype=float) for a in (y, wt, offset))
        self.has_offset = bool(np.any(self.offset != 0.0))
        self.family = family
        self.blocks = list(blocks)
        self.system = WeightedSystem(self.blocks)
        self.q = self.system.q
        self.Xf = np.asfortranarray(self.X)      # columns contiguous: the per-column sums of W X
        self.wx_plan = self.system.wx_plan(self.X)
        self.response = Response(family, self.y, self.wt)
        self.sat, self.binary = self.response.sat, self.response.binary
        # -2 * saturated log-likelihood: what turns sum(dev_i) into a complete -2 log-likelihood
        self.const = -2.0 * (float(np.sum(self.wt * self.sat)) + family.log_constant(self.y, self.wt))
        # R's binomial aic where rounding makes it differ from sum(dev_i) + const (fractional weights)
        self.rounded_aic = None
        if family.name == "binomial" and trials is not None:
            from lmmcli.glmm.family import RoundedBinomialAic

            self.rounded_aic = RoundedBinomialAic.of(self.y, self.wt, np.asarray(trials, dtype=float))
        self.lower = theta_lower(self.blocks)
        self.theta0 = theta_start(self.blocks)
        self._warm_u = np.zeros(self.q)     # exact PIRLS starts from the last u-hat
        self.eta0 = None           # glmer's stage-2 start: the stage-1 linear predictor (set by the fit)
        self._start = None         # (start eta, mu, working weights) of the last glmer_pirls start

    # -- the GLM pieces (glmm.response) ---------------------------------------------------------
    def deviance(self, mu) -> float:
        """sum of the deviance residuals at mu."""
        return self.response.deviance(mu)

    def mean(self, eta):
        """(mu, dev) at eta; dev is +inf where eta is outside the link's domain."""
        return self.response.mean(eta)

    def working(self, eta, mu):
        """(W, W r): Fisher weights wt * mu_eta^2 / V(mu) and W times the working residuals (y - mu) / mu_eta."""
        return self.response.working(eta, mu)

    # -- PIRLS ------------------------------------------------------------------------------------
    def fixed_part(self, beta) -> np.ndarray:
        """offset + X beta."""
        xb = self.Xf @ beta                 # (column-major: twice as fast as X @ beta for a few columns)
        if self.has_offset:
            xb += self.offset
        return xb

    def linpred(self, theta_factor: Factor, beta, u, xb=None):
        """eta = offset + X beta + Z Lambda u (xb: offset + X beta, when already formed)."""
        eta = self.system.z_times(self.system.lambda_n(theta_factor, u))
        eta += self.fixed_part(beta) if xb is None else xb
        return eta

    def pirls(self, theta, beta, u=None) -> PirlsState:
        """The exact conditional modes at (theta, beta): Fisher steps with step halving to convergence."""
        theta = np.asarray(theta, dtype=float)
        beta = np.asarray(beta, dtype=float)
        u = (self._warm_u if u is None else u).copy()
        sysm = self.system
        F = sysm.lambdas(theta)
        eta = self.linpred(F, beta, u)
        mu, dev = self.mean(eta)
        if mu is None or not np.isfinite(dev):        # a bad warm start: from u = 0
            u = np.zeros(self.q)
            eta = self.linpred(F, beta, u)
            mu, dev = self.mean(eta)
            if mu is None or not np.isfinite(dev):
                raise NumericalError("PIRLS: the linear predictor is outside the link's range")
        pdev = dev + u @ u
        converged, forced = False, 0
        for it in range(1, PIRLS_MAXIT + 1):
            W, Wr = self.working(eta, mu)
            F = sysm.factor(W, theta)
            c = sysm.lambda_t(F, sysm.zt_times(Wr)[:, None])[:, 0] - u
            du = sysm.solve(F, c[:, None])[:, 0]
            decrement = float(c @ du)
            if np.max(np.abs(du)) < PIRLS_TOL:
                converged = True
                break
            step = self._line_search(F, beta, u, du, None, pdev)
            if step is None:
                # pdev cannot show the decrease any more (rounding): a tiny Newton step is still right, and
                # the next factor is then at the weights of u-hat; a large one that fails is a failure
                if decrement > 1e-9 * (1.0 + abs(pdev)) or forced >= 3:
                    converged = decrement < 1e-9 * (1.0 + abs(pdev))
                    break
                forced += 1
                step = self._take(F, beta, u, du, None)
            beta, u, eta, mu, dev, pdev = step
        self._warm_u = u.copy()
        return PirlsState(theta, beta, u, eta, mu, dev, F, it, converged)

    def _take(self, F, beta, u, du, dbeta):
        """The full step, whatever pdev does."""
        u_new = u + du
        beta_new = beta if dbeta is None else beta + dbeta
        eta = self.linpred(F, beta_new, u_new)
        mu, dev = self.mean(eta)
        return beta_new, u_new, eta, mu, dev, dev + u_new @ u_new

    def _line_search(self, F, beta, u, du, dbeta, pdev):
        """The full step, halved until pdev decreases; None if it never does."""
        t = 1.0
        for _ in range(MAX_HALVINGS):
            u_new = u + t * du
            beta_new = beta if dbeta is None else beta + t * dbeta
            eta = self.linpred(F, beta_new, u_new)
            mu, dev = self.mean(eta)
            new = dev + u_new @ u_new
            if mu is not None and new < pdev:
                return beta_new, u_new, eta, mu, dev, new
            t *= 0.5
        return None

    def beta_information(self, st: PirlsState) -> np.ndarray:
        """RX' RX = X'WX - X'WZ Lambda M^{-1} Lambda'Z'WX at a state's weights (glmer's vcov without the Hessian)."""
        W, Wr = self.working(st.eta, st.mu)
        return self._joint_solve(self.system.factor(W, st.theta), W, self._joint_rhs(st.eta, W, Wr))[2]

    # -- glmer's own Laplace objective -------------------------------------------------------------
    def glmer_pirls(self, theta, beta=None, start=None) -> PirlsState:
        """PIRLS exactly as glmer's deviance functions run it, so that its objective is glmer's.

        glmer starts every evaluation from one fixed linear predictor (`start`; by default eta0, the
        stage-1 result), takes full Fisher steps for u -- for u and beta together when beta is None (its
        nAGQ = 0 stage) -- halving the step toward the previous iterate if pdev rises, stops when pdev
        changes by less than GLMER_TOL relatively, and keeps the factor L of the last step's weights:
        the weights *before* the final update of mu. That L is not at the mode, so glmer's Laplace value
        differs from the exact one by up to ~1e-3 (far more for large variances), and so do its
        curvature and standard errors; matching glmer means matching this.
        """
        theta = np.asarray(theta, dtype=float)
        joint = beta is None
        sysm = self.system
        beta = np.zeros(self.p) if joint else np.asarray(beta, dtype=float)
        xb = None if joint else self.fixed_part(beta)
        start = self.eta0 if start is None else start
        mu, working = self._at_start(start)
        if mu is None:
            raise NumericalError("PIRLS cannot start: the linear predictor is not finite")
        eta = start.copy()
        u = np.zeros(self.q)
        old, converged, RXtRX = np.inf, False, None
        for it in range(1, GLMER_MAXIT + 1):
            W, Wr = working if it == 1 else self.working(eta, mu)
            F = sysm.factor(W, theta)
            if joint:
                beta_new, u_new, RXtRX = self._joint_solve(F, W, self._joint_rhs(eta, W, Wr))
            else:
                beta_new = beta
                Wz = eta - xb                     # W times the working response, less its fixed part
                Wz *= W
                Wz += Wr
                u_new = sysm.solve(F, sysm.lambda_t(F, sysm.zt_times(Wz)[:, None]))[:, 0]
            eta_new = self.linpred(F, beta_new, u_new, xb)
            mu_new, dev = self.mean(eta_new)
            pdev = dev + u_new @ u_new
            if np.isfinite(pdev) and abs((old - pdev) / pdev) < GLMER_TOL:
                beta, u, eta, mu, converged = beta_new, u_new, eta_new, mu_new, True
                break
            for _ in range(10):
                if pdev <= old:
                    break
                u_new, beta_new = 0.5 * (u + u_new), 0.5 * (beta + beta_new)
                eta_new = self.linpred(F, beta_new, u_new, xb)
                mu_new, dev = self.mean(eta_new)
                pdev = dev + u_new @ u_new
            if mu_new is None or pdev > old:
                raise NumericalError("PIRLS step failed (as glmer's 'PIRLS step-halvings failed to reduce deviance')")
            beta, u, eta, mu, old = beta_new, u_new, eta_new, mu_new, pdev
        return PirlsState(theta, beta, u, eta, mu, dev, F, it, converged, RXtRX)

    def _at_start(self, eta):
        """(mu, (W, W r)) at a PIRLS start eta, kept for the next run from the same array: every
        evaluation of a stage starts from one linear predictor (neither is changed in place)."""
        if self._start is None or self._start[0] is not eta:
            mu, _ = self.mean(eta)
            self._start = (eta, mu, None if mu is None else self.working(eta, mu))
        return self._start[1:]

    def _joint_rhs(self, eta, W, Wr):
        """W z for the working response z = eta - offset + r of the joint (beta, u) fit."""
        Wz = eta - self.offset if self.has_offset else eta.copy()
        Wz *= W
        Wz += Wr
        return Wz

    def _joint_solve(self, F, W, Wz):
        """(beta, u, RX'RX): the penalized weighted least-squares fit of the working response z, given W z."""
        sysm = self.system
        WX = self.Xf * W[:, None]
        C = sysm.lambda_t(F, sysm.zt_wx(F, W, WX, self.wx_plan))
        sol = sysm.solve(F, np.column_stack([C, sysm.lambda_t(F, sysm.zt_times(Wz)[:, None])]))
        P, pz = sol[:, :self.p], sol[:, self.p]
        RXtRX = self.Xf.T @ WX - C.T @ P
        beta = np.linalg.solve(RXtRX, self.X.T @ Wz - C.T @ pz)
        return beta, pz - P @ beta, RXtRX

    def glmer_stage1(self, theta) -> float:
        """glmer's nAGQ = 0 objective: its joint PIRLS from the start (eta_start) at every theta."""
        try:
            return self.laplace(self.glmer_pirls(theta, None, self.eta_start))
        except (np.linalg.LinAlgError, NumericalError, FloatingPointError):
            return np.inf

    def set_glmer_start(self):
        """glmer's stage-1 start: its joint PIRLS at theta = 1 from R's mustart."""
        fam = self.family
        eta = fam.link.linkfun(fam.mustart(self.y, self.wt))
        self.eta_start = self.glmer_pirls(self.theta0, None, eta).eta

    # -- objectives -------------------------------------------------------------------------------
    def laplace(self, st: PirlsState) -> float:
        """Complete -2 log-likelihood by the Laplace approximation at a PIRLS state (glmer: log|L|^2 +
        |u|^2 + family$aic(mu), which is pdev + const unless R's aic rounds the counts)."""
        if self.rounded_aic is not None:
            return st.factor.logdet_L + float(st.u @ st.u) + self.rounded_aic(st.mu)
        return st.factor.logdet_L + st.pdev + self.const

    def agq(self, st: PirlsState, nagq: int) -> float:
        """Complete -2 log-likelihood by adaptive Gauss-Hermite quadrature with nagq knots (one scalar term)."""
        blk = self.blocks[0]
        codes, z, nl = blk.codes, blk.Z[:, 0], blk.nlevels
        t = float(st.theta[0])
        base = st.eta - t * z * st.u[codes]          # offset + X beta
        devc0 = self._group_dev(codes, nl, st.mu) + st.u * st.u
        s = 1.0 / st.factor.L11[:, 0, 0]              # conditional sd of u_g
        knots, weights = gh_rule(nagq)
        mult = np.zeros(nl)
        for zk, wk in zip(knots, weights):
            if zk == 0.0:
                mult += wk
                continue
            uk = st.u + zk * s
            mu, _ = self.mean(base + t * z * uk[codes])
            if mu is None:
                return np.inf
            devc = self._group_dev(codes, nl, mu) + uk * uk
            mult += wk * np.exp(0.5 * zk * zk - 0.5 * (devc - devc0))
        return float(devc0.sum() + st.factor.logdet_L - 2.0 * np.log(mult).sum()) + self.const

    def _group_dev(self, codes, nl, mu):
        with np.errstate(all="ignore"):
            d = self.family.dev_resids(self.y, mu, self.wt, self.sat, self.binary)
        return np.bincount(codes, weights=d, minlength=nl)

    def stage2(self, theta, beta, nagq: int = 1, exact: bool = False) -> float:
        """The Laplace (nagq = 1: glmer's, or the exact one) or AGQ objective at (theta, beta)."""
        try:
            if nagq <= 1 and not exact:
                return self.laplace(self.glmer_pirls(theta, beta))
            st = self.pirls(theta, beta)
            return self.laplace(st) if nagq <= 1 else self.agq(st, nagq)
        except (np.linalg.LinAlgError, NumericalError, FloatingPointError):
            self._warm_u = np.zeros(self.q)
            return np.inf


def gh_rule(k: int):
    """Gauss-Hermite knots and weights for the standard normal density (weights sum to 1), as lme4's GHrule."""
    from numpy.polynomial.hermite_e import hermegauss

    x, w = hermegauss(k)
    x[np.abs(x) < 1e-14] = 0.0
    return x, w / np.sqrt(2.0 * np.pi)
