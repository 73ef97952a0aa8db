"""A family applied to one response: the mean, deviance and working weights at a linear predictor.

These run at every PIRLS step, so on large data each pass over the rows counts. For the canonical
links (logit, log) inside the range where R's link functions clamp nothing, the deviance needs no
second transcendental pass over mu: with e = exp(-eta), mu = 1 / (1 + e) and

    log mu = -log(1 + e),   log(1 - mu) = log mu - eta,

so a binomial row's log-likelihood kernel  y log mu + (1 - y) log(1 - mu) = log mu - (1 - y) eta,
and a Poisson row's  y log mu - mu = y eta - mu.  Summed with the prior weights, the deviance is
a log pass and two dot products; the sums of the data (sum wt sat, wt (1 - y), wt y) are formed
once. Outside that range (|eta| > 30 for logit, mu < eps for log) and for the other links, the
general formulas as R's family functions give them.

The working weights are returned as (W, W r), r = (y - mu) / mu_eta the working residual, because
PIRLS only ever needs W r: for the canonical links W r = wt (y - mu), with no division.
"""

from __future__ import annotations

import numpy as np

from lmmcli.glmm.family import EPS, THRESH, Family

LOG_MIN_ETA = float(np.log(EPS))      # below this, R's poisson()$linkinv returns eps, not exp(eta)
EXP_MAX_ETA = 700.0                    # exp(eta) is finite below this


class Response:
    """y, prior weights wt and a family, with the sums the per-step kernels need, formed once."""

    def __init__(self, family: Family, y: np.ndarray, wt: np.ndarray):
        self.family = family
        self.y, self.wt = y, wt
        self.unit = bool(np.all(wt == 1.0))
        self.sat = family.saturated_kernel(y)
        self.binary = family.name == "binomial" and bool(np.all((y == 0.0) | (y == 1.0)))
        self.wsat = float(np.sum(wt * self.sat))
        link = family.link.name
        self.canonical = (family.name, link) in (("binomial", "logit"), ("poisson", "log"))
        # the data vector of the canonical deviance's dot product with eta (see the module docstring)
        self.eta_coef = wt * (1.0 - y) if link == "logit" else wt * y

    # -- the mean and the deviance -----------------------------------------------------------------
    def mean(self, eta: np.ndarray):
        """(mu, sum of deviance residuals) at eta; (None, inf) where eta is not finite."""
        lo, hi = float(eta.min()), float(eta.max())      # (NaN compares false: the general path)
        link = self.family.link.name if self.canonical else None
        if link == "logit" and -THRESH <= lo and hi <= THRESH:
            return self._logit_mean(eta)
        if link == "log" and LOG_MIN_ETA < lo and hi < EXP_MAX_ETA:
            mu = np.exp(eta)
            return mu, 2.0 * (self.wsat - float(self.eta_coef @ eta) + self._wsum(mu))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None, np.inf
        mu = self.family.link.linkinv(eta)
        with np.errstate(all="ignore"):
            dev = self.deviance(mu)
        return mu, (dev if np.isfinite(dev) else np.inf)

    def _logit_mean(self, eta):
        t = np.negative(eta)
        np.exp(t, out=t)
        t += 1.0                                          # 1 + e
        mu = np.reciprocal(t)
        np.log(t, out=t)                                  # -log mu
        return mu, 2.0 * (self.wsat + self._wsum(t) + float(self.eta_coef @ eta))

    def _wsum(self, v) -> float:
        return float(v.sum()) if self.unit else float(self.wt @ v)

    def deviance(self, mu) -> float:
        """sum of R's deviance residuals at mu (the general formula)."""
        fam = self.family
        if self.binary:
            return float(-2.0 * (self.wt @ fam.loglik_kernel(self.y, mu, True)))
        return float(np.sum(fam.dev_resids(self.y, mu, self.wt, self.sat)))

    # -- the working weights -----------------------------------------------------------------------
    def working(self, eta: np.ndarray, mu: np.ndarray):
        """(W, W r): Fisher weights wt mu_eta^2 / V(mu) and W times the working residual (y - mu) / mu_eta."""
        link = self.family.link.name
        resid = self.y - mu
        if link == "log":                       # mu_eta = max(exp(eta), eps) = mu = V(mu)
            return (mu if self.unit else self.wt * mu), self._times_wt(resid)
        if link == "logit" and max(-float(eta.min()), float(eta.max())) <= THRESH:   # mu_eta = V(mu)
            V = 1.0 - mu
            V *= mu
            return self._times_wt(V), self._times_wt(resid)
        if link == "logit":                     # R's mu_eta is eps beyond its thresholds
            V = mu * (1.0 - mu)
            mu_eta = np.where(np.abs(eta) > THRESH, EPS, V)
        else:
            mu_eta = self.family.link.mu_eta(eta)
            V = self.family.variance(mu)
        W = self.wt * (mu_eta * mu_eta / V)
        return W, W * resid / mu_eta

    def _times_wt(self, v):
        """v * wt, in place (v is a fresh array)."""
        if not self.unit:
            v *= self.wt
        return v
