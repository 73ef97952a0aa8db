"""Parametric bootstrap of a GLMM: reproducible, and its spread agrees with glmer's standard errors."""

from __future__ import annotations

import numpy as np

from lmmcli.glmm.bootstrap import attach_boot, bootstrap
from lmmcli.glmm.result import assemble
from tests.glmm.reference import CASES, fitted


def test_bootstrap_spread_matches_the_standard_errors_and_repeats():
    fm = fitted("cbpp")
    sample, failed = bootstrap(fm, 80, seed=11)
    assert failed == 0
    se = np.array(CASES["cbpp"]["expected"]["fixef"]["se"])
    ratio = sample[:, :4].std(axis=0, ddof=1) / se
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio
    again, _ = bootstrap(fm, 80, seed=11)
    assert np.array_equal(sample, again)


def test_intervals_are_attached_around_the_estimates():
    fm = fitted("counts_offset")
    r = attach_boot(assemble(fm), fm, 0.9, 40, seed=2)
    for fe in r.fixed_effects:
        assert fe.conf_low < fe.estimate < fe.conf_high
    vc = r.variance_components[0]
    assert vc.conf_low < vc.sd < vc.conf_high
    assert r.extra["ci_method"] == "boot" and r.extra["ci_bootstrap"]["nsim"] == 40
