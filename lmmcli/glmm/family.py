"""GLM families and links, as R's binomial() and poisson(): mean, variance, deviance residuals, log-likelihood.

A Link maps the mean mu to the linear predictor eta = g(mu); its inverse and d mu / d eta give the
working weights W = prior_weights * mu_eta^2 / V(mu) (Fisher scoring: the expected information,
which is what glmer's PIRLS and its Laplace approximation use for every link).

A Family's deviance residuals are split as  dev_i = 2 wt_i (sat_i - loglik_i(mu)) : the saturated
part sat_i is a constant of the data, formed once, so each PIRLS step costs only the logs of mu.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt

import numpy as np

from lmmcli.errors import ModelSpecError

EPS = np.finfo(float).eps
# R's binomial links keep mu inside (0, 1): logit's linkinv and mu_eta treat |eta| > THRESH as R's C code
THRESH = 30.0
MTHRESH = -30.0
INV_SQRT_2PI = 1.0 / sqrt(2.0 * np.pi)


PROBIT_THRESH = 8.125890664701906   # R: -qnorm(.Machine$double.eps)


def _ndtr(x):
    from scipy.special import ndtr

    return ndtr(x)


@dataclass(frozen=True)
class Link:
    """A link function by name: linkfun, linkinv, mu_eta (d mu / d eta) and d mu_eta / d eta."""

    name: str

    def linkfun(self, mu):
        n = self.name
        if n == "logit":
            return np.log(mu / (1.0 - mu))
        if n == "probit":
            from scipy.special import ndtri

            return ndtri(mu)
        if n == "cloglog":
            return np.log(-np.log1p(-mu))
        if n == "log":
            return np.log(mu)
        if n == "sqrt":
            return np.sqrt(mu)
        return np.asarray(mu, dtype=float)

    def linkinv(self, eta):
        n = self.name
        if n == "logit":
            t = np.where(eta < MTHRESH, EPS, np.where(eta > THRESH, 1.0 / EPS, np.exp(eta)))
            return t / (1.0 + t)
        if n == "probit":
            return _ndtr(np.clip(eta, -PROBIT_THRESH, PROBIT_THRESH))
        if n == "cloglog":
            return np.clip(-np.expm1(-np.exp(eta)), EPS, 1.0 - EPS)
        if n == "log":
            return np.maximum(np.exp(eta), EPS)
        if n == "sqrt":
            return eta * eta
        return np.asarray(eta, dtype=float)

    def mu_eta(self, eta):
        n = self.name
        if n == "logit":
            e = np.exp(-np.abs(eta))
            return np.where(np.abs(eta) > THRESH, EPS, e / (1.0 + e) ** 2)
        if n == "probit":
            return np.maximum(INV_SQRT_2PI * np.exp(-0.5 * eta * eta), EPS)
        if n == "cloglog":
            e = np.minimum(eta, 700.0)
            return np.maximum(np.exp(e) * np.exp(-np.exp(e)), EPS)
        if n == "log":
            return np.maximum(np.exp(eta), EPS)
        if n == "sqrt":
            return 2.0 * eta
        return np.ones_like(eta)


LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log", "sqrt", "identity")}


@dataclass(frozen=True)
class Family:
    """binomial or poisson with one of its links."""

    name: str
    link: Link

    def variance(self, mu):
        return mu * (1.0 - mu) if self.name == "binomial" else mu

    def valid_eta(self, eta) -> bool:
        """Whether eta is finite. A mean out of range (identity link: mu <= 0) shows as an undefined
        deviance instead; a negative eta of the sqrt link is allowed, as in glmer's PIRLS (mu = eta^2)."""
        return bool(np.all(np.isfinite(eta)))

    def loglik_kernel(self, y, mu, binary: bool = False):
        """The part of each row's log-likelihood (per unit of prior weight) that depends on mu;
        binary: y is 0/1, so one log per row is enough."""
        if self.name == "binomial":
            if binary:
                return np.log(np.where(y > 0.5, mu, 1.0 - mu))
            return y * np.log(mu) + (1.0 - y) * np.log1p(-mu)
        return y * np.log(mu) - mu

    def saturated_kernel(self, y):
        """loglik_kernel at mu = y (0 log 0 = 0): the saturated model's part."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "binomial":
                a = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
                b = np.where(y < 1, (1.0 - y) * np.log1p(-np.where(y < 1, y, 0.0)), 0.0)
                return a + b
            return np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0) - y

    def dev_resids(self, y, mu, wt, sat, binary: bool = False):
        """R's family$dev.resids, from the saturated part `sat` formed once (0 for 0/1 outcomes)."""
        return 2.0 * wt * (sat - self.loglik_kernel(y, mu, binary))

    def log_constant(self, y, wt) -> float:
        """sum of the log-likelihood's terms free of mu: log choose(n, k) (binomial), -log y! (poisson).

        -2 loglik = sum(dev_resids) - 2 (sum(wt * sat) + log_constant): R's family$aic. lgamma is
        taken once per distinct value (counts repeat), so neither scipy nor a pass per row is needed.
        """
        if self.name == "binomial":
            n, k = np.round(wt), np.round(wt * y)
            if np.all(n == 1.0):
                return 0.0                       # 0/1 outcomes: every choose(1, k) is 1
            return float(np.sum(_lgamma(n + 1) - _lgamma(k + 1) - _lgamma(n - k + 1)))
        return float(-np.sum(wt * _lgamma(y + 1)))

    def mustart(self, y, wt):
        """R's family$initialize starting means."""
        if self.name == "binomial":
            return (wt * y + 0.5) / (wt + 1.0)
        return y + 0.1


class RoundedBinomialAic:
    """glmer's binomial aic where it is not the deviance plus a constant: -2 sum (wt / round(m))
    dbinom(round(m y), round(m), mu, log = TRUE), m the trials if any exceeds 1, else the prior weights
    (lme4's C++ family; R's binomial()$aic divides by m before rounding). With fractional prior weights
    on a 0/1 or proportion response (or non-integer successes) the rounding makes it another function
    of mu than sum(dev_i); glmer's Laplace deviance is log|L|^2 + |u|^2 + this aic, so matching glmer
    means evaluating it as lme4 does."""

    def __init__(self, k, n, scale):
        self.k, self.n, self.scale = k, n, scale
        self.const = float(np.sum(scale * (_lgamma(n + 1) - _lgamma(k + 1) - _lgamma(n - k + 1))))

    @staticmethod
    def of(y, wt, trials):
        """The aic of a binomial response, or None where it equals the deviance plus a constant."""
        m = trials if np.any(trials > 1) else wt
        k, n = np.round(m * y), np.round(m)
        if np.all(np.abs(m * y - k) < 1e-8) and np.all(np.abs(m - n) < 1e-8):
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(n > 0, wt / np.where(n > 0, n, 1.0), 0.0)
        return RoundedBinomialAic(k, n, scale)

    def __call__(self, mu) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(self.k > 0, self.k * np.log(mu), 0.0)
            b = np.where(self.n > self.k, (self.n - self.k) * np.log1p(-mu), 0.0)
        return float(-2.0 * (np.sum(self.scale * (a + b)) + self.const))


def _lgamma(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) elementwise, computed once per distinct value."""
    from math import lgamma

    values, inverse = np.unique(x, return_inverse=True)
    return np.array([lgamma(v) for v in values])[inverse]


def make_family(name: str, link: str | None = None) -> Family:
    """binomial(link) or poisson(link); an unknown name or link is a ModelSpecError naming the choices."""
    if name not in LINKS:
        raise ModelSpecError(f"unknown family '{name}'", hint="use --family binomial or --family poisson")
    link = link or LINKS[name][0]
    if link not in LINKS[name]:
        raise ModelSpecError(f"link '{link}' is not available for the {name} family",
                             hint=f"{name} links: {', '.join(LINKS[name])}")
    return Family(name, Link(link))
