"""--ci profile for GLMMs: lme4's confint(method = "profile") on glmer fits (numbers: make_profile.R)."""

from __future__ import annotations

import json

import pytest

from tests.glmm.reference import REF, fitted


def _expected(case_id):
    return json.loads((REF / "expected" / f"profile_{case_id}.json").read_text())


# pois_offset_slope: R's upper end for (Intercept), 0.162608, is 1.1e-4 beyond lmm's; the profiled deviance
# puts zeta there at 1.96137, not qnorm(0.975) = 1.95996 (R's spline between its sparser points is off),
# while at lmm's end zeta is 1.95999 -- test_interval_ends_are_where_zeta_crosses checks that
TOL = {"pois_offset_slope": 2e-4}


@pytest.mark.parametrize("case_id", ["counts_offset", pytest.param("cbpp", marks=pytest.mark.slow),
                                     pytest.param("cbpp_agq25", marks=pytest.mark.slow),
                                     pytest.param("pois_offset_slope", marks=pytest.mark.slow)])
def test_profile_intervals_match_confint(case_id):
    from lmmcli.glmm.profile import profile_intervals

    fm, exp = fitted(case_id), _expected(case_id)
    iv = profile_intervals(fm)
    assert not iv.warnings
    tol = TOL.get(case_id, 1e-4)
    for name, lo, hi in zip(exp["names"], exp["lower"], exp["upper"]):
        got = iv.bounds[name]
        assert got[0] == pytest.approx(lo, abs=tol), name
        assert got[1] == pytest.approx(hi, abs=tol), name


@pytest.mark.parametrize("case_id", ["counts_offset", pytest.param("pois_offset_slope", marks=pytest.mark.slow)])
def test_interval_ends_are_where_zeta_crosses(case_id):
    """The deviance profiled afresh at each end of each interval gives zeta = -/+ qnorm(0.975)."""
    import numpy as np

    from lmmcli.glmm.profile import GlmmProfiler, profile_intervals

    fm = fitted(case_id)
    iv = profile_intervals(fm)
    pr = GlmmProfiler(fm)
    for w, name in enumerate(pr.names()):
        for end, want in zip(iv.bounds[name], (-1.959964, 1.959964)):
            assert pr.zeta_at(w)(end, np.delete(pr.opt, w)).zeta == pytest.approx(want, abs=2e-3), name


def test_cli_fit_ci_profile_puts_the_intervals_on_the_rows():
    from typer.testing import CliRunner

    from lmmcli.cli import app

    exp = _expected("counts_offset")
    r = CliRunner().invoke(app, ["fit", str(REF / "data" / "counts.csv"), "count ~ x + offset(log(exposure)) + (1 | site)",
                                 "--family", "poisson", "--ci", "profile", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["ci_method"] == "profile"
    want = dict(zip(exp["names"], zip(exp["lower"], exp["upper"])))
    vc = d["variance_components"][0]
    assert (vc["conf_low"], vc["conf_high"]) == pytest.approx(want["sd_(Intercept)|site"], abs=1e-4)
    for fe in d["fixed_effects"]:
        assert (fe["conf_low"], fe["conf_high"]) == pytest.approx(want[fe["term"]], abs=1e-4)
