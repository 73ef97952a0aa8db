"""Links and families against their definitions: inverse links, derivatives, deviance, log-likelihood."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lmmcli.glmm.family import LINKS, make_family
from lmmcli.glmm.pirls import gh_rule

PAIRS = [(f, link) for f, links in LINKS.items() for link in links]


@pytest.mark.parametrize("family, link", PAIRS)
def test_linkinv_inverts_linkfun_and_mu_eta_is_its_derivative(family, link):
    fam = make_family(family, link)
    mu = np.array([0.1, 0.3, 0.5, 0.8]) if family == "binomial" else np.array([0.2, 1.0, 3.0, 12.0])
    eta = fam.link.linkfun(mu)
    np.testing.assert_allclose(fam.link.linkinv(eta), mu, rtol=1e-12)
    h = 1e-6
    numeric = (fam.link.linkinv(eta + h) - fam.link.linkinv(eta - h)) / (2 * h)
    np.testing.assert_allclose(fam.link.mu_eta(eta), numeric, rtol=1e-6)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_deviance_plus_constant_is_minus_twice_the_loglik(family):
    fam = make_family(family)
    if family == "binomial":
        n = np.array([5.0, 3.0, 8.0, 1.0])
        y = np.array([2.0, 0.0, 8.0, 1.0]) / n
        mu = np.array([0.3, 0.2, 0.7, 0.6])
        ll = stats.binom.logpmf(np.round(y * n), n, mu).sum()
    else:
        n = np.ones(4)
        y = np.array([0.0, 2.0, 7.0, 1.0])
        mu = np.array([0.5, 1.5, 6.0, 2.0])
        ll = stats.poisson.logpmf(y, mu).sum()
    sat = fam.saturated_kernel(y)
    dev = fam.dev_resids(y, mu, n, sat).sum()
    const = -2.0 * (np.sum(n * sat) + fam.log_constant(y, n))
    assert dev + const == pytest.approx(-2 * ll, rel=1e-12)


def test_gauss_hermite_rule_integrates_normal_moments():
    z, w = gh_rule(9)
    assert w.sum() == pytest.approx(1.0)
    assert (w * z ** 2).sum() == pytest.approx(1.0)
    assert (w * z ** 4).sum() == pytest.approx(3.0)
