"""simulate() from a fitted GLMM: reproducible with a seed, and centred on the fitted means."""

from __future__ import annotations

import numpy as np

from lmmcli.glmm.simulate import simulate_glmm
from tests.glmm.reference import fitted


def test_use_u_sims_average_to_the_fitted_counts():
    fm = fitted("cbpp")
    sims = simulate_glmm(fm, 4000, seed=1, use_u=True)
    n, mu = fm.model.wt, fm.state.mu
    se = np.sqrt(n * mu * (1 - mu) / 4000)
    assert np.all(np.abs(sims.mean(axis=1) - n * mu) < 5 * se + 1e-12)


def test_new_random_effects_spread_more_and_the_seed_repeats():
    fm = fitted("counts_offset")
    a, b = simulate_glmm(fm, 300, seed=7), simulate_glmm(fm, 300, seed=7)
    assert np.array_equal(a, b)
    assert a.var(axis=1).mean() > simulate_glmm(fm, 300, seed=7, use_u=True).var(axis=1).mean()
    assert np.all(a >= 0) and np.all(a == np.round(a))


def test_binary_responses_stay_zero_one():
    sims = simulate_glmm(fitted("binary_logical"), 5, seed=3)
    assert set(np.unique(sims)) <= {0.0, 1.0}
