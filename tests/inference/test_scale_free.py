"""Refits are scale-free: the profile and the bootstrap give the same intervals whatever y's units.

Reaction * 1e-9 and * 1e9 are stored standardized (scaling.py) and every refit goes through engine.fit
in those units, so the intervals (mapped back, divided by the factor) must equal the unscaled ones.
Each unit is fitted on its own: the main fit's stopping rule is absolute (optimize.FIT_TOL), so its
optimum does not move with the units either. Before engine.fit, `--ci profile` failed at 1e-9 ("not
positive definite") and the bootstrap's ends moved by 4e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.fit import fit
from lmmcli.inference.bootstrap import bootstrap, percentile_intervals
from lmmcli.inference.profile import profile_bounds

FORMULA = "Reaction ~ Days + (Days|Subject)"
FACTORS = [1e-9, 1e9]


def _in_reference_units(bounds, c):
    """Interval ends divided by the factor y was multiplied by (correlations have no units)."""
    return {k: np.array(v) / (1.0 if k.startswith("cor") else c) for k, v in bounds.items()}


def _assert_close(got, want, rel):
    assert got.keys() == want.keys()
    for k in want:
        if k.startswith("cor"):
            np.testing.assert_allclose(got[k], want[k], atol=rel, err_msg=k)
        else:
            np.testing.assert_allclose(got[k], want[k], rtol=rel, err_msg=k)


@pytest.fixture(scope="module")
def fits(sleepstudy):
    """The model fitted independently with Reaction in each unit."""
    return {c: fit(FORMULA, sleepstudy.assign(Reaction=sleepstudy.Reaction * c)) for c in [1.0] + FACTORS}


@pytest.mark.parametrize("c", FACTORS)
def test_profile_is_scale_free(fits, c):
    got, want = (_in_reference_units(profile_bounds(fits[k])[0], k) for k in (c, 1.0))
    _assert_close(got, want, rel=1e-6)


@pytest.mark.parametrize("c", FACTORS)
def test_bootstrap_is_scale_free(fits, c):
    """Each unit fitted on its own. Before the Newton end step (newton.newton_polish) this held only to
    2e-6 (measured 1.4e-6 at 1e-9, 5.4e-7 at 1e9): BOBYQA pins theta only to ~sqrt(noise / curvature),
    1.3e-6 for the unscaled fit's theta[0], and the replicates are drawn from it."""
    got, want = (_in_reference_units(percentile_intervals(bootstrap(fits[k], nsim=40, seed=3, workers=1)), k)
                 for k in (c, 1.0))
    _assert_close(got, want, rel=1e-6)
