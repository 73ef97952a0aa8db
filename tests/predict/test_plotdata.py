"""plotdata: caterpillar intervals, group lines and diagnostics checked against lme4's numbers.

Reference values: tests/reference/expected/<case>.json (lme4 1.1-31): `ranef` (condval, condsd),
`coef` (group-specific coefficients), `fitted`. Tolerances are those of the golden tests (the
engine agrees with lme4 to about 1e-4 relative).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import CASES
from lmmcli.predict import plotdata
from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.fit import fit

BY_ID = {c["id"]: c for c in CASES}


def fit_case(case_id):
    case = BY_ID[case_id]
    df = pd.read_csv(case["path"])
    return fit(case["formula"], df, reml=case["reml"], factors=case["factors"]), df, case["expected"]


@pytest.mark.parametrize("case_id", ["sleepstudy_slope", "penicillin_crossed", "pastes_nested", "gpa_slope"])
@pytest.mark.parametrize("level", [0.95, 0.8])
def test_caterpillar_intervals_are_condval_plus_minus_z_condsd(case_id, level):
    fm, _, exp = fit_case(case_id)
    panels = plotdata.caterpillar(fm.result(), level)
    r = exp["ranef"]
    z = stats.norm.ppf(0.5 + level / 2)
    ref = {(g, t, str(lv)): (c, s) for g, t, lv, c, s in
           zip(r["grpvar"], r["term"], r["grp"], r["condval"], r["condsd"])}
    assert sum(len(p) for p in panels) == len(ref)
    for p in panels:
        assert np.all(np.diff(p.estimate) >= 0)           # sorted by estimate
        c, s = np.array([ref[(p.group, p.term, lv)] for lv in p.levels]).T
        scale = np.abs(c).max()
        np.testing.assert_allclose(p.low, c - z * s, atol=2e-4 * scale)
        np.testing.assert_allclose(p.high, c + z * s, atol=2e-4 * scale)
        np.testing.assert_array_equal(p.excludes_zero, (p.low > 0) | (p.high < 0))


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.2])
def test_caterpillar_rejects_bad_level(level):
    fm, _, _ = fit_case("dyestuff")
    with pytest.raises(UsageError):
        plotdata.caterpillar(fm.result(), level)


@pytest.mark.parametrize("case_id", ["sleepstudy_slope", "sleepstudy_intercept", "gpa_slope"])
def test_group_lines_follow_lme4_coef(case_id):
    """Each group's line at x is coef(m)[group] (intercept + slope x); the population line is fixef."""
    fm, df, exp = fit_case(case_id)
    tr = plotdata.trajectories(fm, df)
    coef = exp["coef"][0]
    values = dict(zip(map(str, coef["levels"]), coef["values"]))
    slope_col = coef["terms"].index(tr.x_name) if tr.x_name in coef["terms"] else None
    for lev, lx, ly in zip(tr.levels, tr.line_x, tr.line_y):
        a = values[lev][0]
        b = values[lev][slope_col] if slope_col is not None else exp["fixef"]["estimate"][1]
        np.testing.assert_allclose(ly, a + b * lx, rtol=1e-4)
    b0, b1 = exp["fixef"]["estimate"][:2]
    np.testing.assert_allclose(tr.pop_y, b0 + b1 * tr.pop_x, rtol=1e-4)


def test_trajectories_hold_every_row_and_a_seeded_sample():
    fm, df, _ = fit_case("sleepstudy_slope")
    tr = plotdata.trajectories(fm, df, n_highlight=5, seed=3)
    assert sum(len(x) for x in tr.x) == len(df) and len(tr.levels) == 18
    assert all(np.all(np.diff(x) >= 0) for x in tr.x)
    assert len(tr.highlight) == 5 and len(set(tr.highlight)) == 5
    assert plotdata.trajectories(fm, df, n_highlight=5, seed=3).highlight == tr.highlight
    others = {tuple(plotdata.trajectories(fm, df, n_highlight=5, seed=s).highlight) for s in range(4, 9)}
    assert len(others) > 1
    assert len(plotdata.trajectories(fm, df, n_highlight=50).highlight) == 18


def test_other_covariates_sit_at_mean_and_reference_on_the_population_line():
    fm, df, exp = fit_case("gpa_cluster")           # gpa ~ occasion + sex + highgpa + (1|student)
    tr = plotdata.trajectories(fm, df)
    est = dict(zip(exp["fixef"]["terms"], exp["fixef"]["estimate"]))
    expect = est["(Intercept)"] + est["occasion"] * tr.pop_x + est["highgpa"] * df["highgpa"].mean()
    np.testing.assert_allclose(tr.pop_y, expect, rtol=1e-4)   # sex at its reference level, female
    assert tr.held == ["sex", "highgpa"]                      # named in the figure's title
    sleep, df_sleep, _ = fit_case("sleepstudy_slope")
    assert plotdata.trajectories(sleep, df_sleep).held == []


@pytest.mark.parametrize("formula, x, error", [
    ("Yield ~ 1 + (1|Batch)", None, ModelSpecError),
    ("Yield ~ 1 + (1|Batch)", "Batch", UsageError),
])
def test_choose_x_errors(formula, x, error):
    df = pd.read_csv(BY_ID["dyestuff"]["path"])
    fm = fit(formula, df)
    with pytest.raises(error):
        plotdata.trajectories(fm, df, x=x)


@pytest.mark.parametrize("n, expected", [
    (5, [0.1190476, 0.3095238, 0.5, 0.6904762, 0.8809524]),     # R: ppoints(5)
    (11, [(i - 0.5) / 11 for i in range(1, 12)]),              # R: ppoints(11), a = 1/2 above 10
])
def test_ppoints_matches_r(n, expected):
    np.testing.assert_allclose(plotdata.ppoints(n), expected, atol=1e-7)


def test_qqline_passes_through_the_quartiles():
    z = stats.norm.ppf(plotdata.ppoints(201))
    qq = plotdata.normal_qq(3.0 * z + 1.5, "x")
    np.testing.assert_allclose([qq.slope, qq.intercept], [3.0, 1.5], rtol=1e-2)
    np.testing.assert_array_equal(qq.theoretical, z)


@pytest.mark.parametrize("case_id, n_qq", [("sleepstudy_slope", 3), ("penicillin_crossed", 3), ("dyestuff", 2)])
def test_diagnostics_residuals_are_lme4_residuals(case_id, n_qq):
    fm, df, exp = fit_case(case_id)
    dg = plotdata.diagnostics(fm)
    np.testing.assert_allclose(dg.fitted, exp["fitted"], rtol=1e-5)
    np.testing.assert_allclose(dg.residuals, df[fm.design.response].to_numpy() - np.array(exp["fitted"]),
                               atol=1e-4 * np.abs(exp["fitted"]).max())
    assert len(dg.qq) == n_qq
