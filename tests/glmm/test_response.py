"""glmm.response: the fast canonical-link mean, deviance and working weights against R's general formulas."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.glmm.family import make_family
from lmmcli.glmm.response import Response

RNG = np.random.default_rng(11)
N = 200


def _general(resp, eta):
    """The general path: R's linkinv, dev.resids, mu.eta and variance."""
    fam = resp.family
    mu = fam.link.linkinv(eta)
    mu_eta = fam.link.mu_eta(eta)
    W = resp.wt * mu_eta ** 2 / fam.variance(mu)
    return mu, resp.deviance(mu), W, W * (resp.y - mu) / mu_eta


CASES = {
    "binary logit": ("binomial", "logit", (RNG.random(N) < 0.4).astype(float), np.ones(N)),
    "proportions logit": ("binomial", "logit", RNG.integers(0, 6, N) / 5.0, np.full(N, 5.0)),
    "counts log": ("poisson", "log", RNG.poisson(3.0, N).astype(float), np.ones(N)),
    "weighted counts log": ("poisson", "log", RNG.poisson(3.0, N).astype(float), RNG.uniform(0.5, 2.0, N)),
    "probit": ("binomial", "probit", (RNG.random(N) < 0.4).astype(float), np.ones(N)),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("scale", [1.0, 40.0])      # 40: beyond the links' thresholds (the general path)
def test_fast_kernels_equal_the_general_formulas(name, scale):
    family, link, y, wt = CASES[name]
    resp = Response(make_family(family, link), y, wt)
    eta = RNG.normal(0.2, 1.0, N) * scale / (4.0 if family == "poisson" else 1.0)
    mu, dev = resp.mean(eta.copy())
    W, Wr = resp.working(eta, mu)
    mu0, dev0, W0, Wr0 = _general(resp, eta)
    np.testing.assert_allclose(mu, mu0, rtol=1e-13)
    assert dev == pytest.approx(dev0, rel=1e-12)
    # beyond logit's thresholds the weights are formed as mu (1 - mu), which cancels for mu near 1
    rtol = 1e-12 if scale == 1.0 else 1e-3
    np.testing.assert_allclose(W, W0, rtol=rtol)
    np.testing.assert_allclose(Wr, Wr0, rtol=rtol, atol=1e-300)


def test_non_finite_eta_has_no_mean():
    resp = Response(make_family("binomial", "logit"), np.ones(3), np.ones(3))
    assert resp.mean(np.array([0.0, np.nan, 1.0])) == (None, np.inf)
