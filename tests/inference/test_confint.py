"""Confidence intervals (lmmcli.inference.confint, lmmcli.inference.profile, lmmcli.inference.bootstrap) and `lmm fit --ci`.

Reference intervals are lme4 1.1-31's confint(method = "profile") and confint(method = "Wald")
in tests/reference/expected/*.json (`confint_profile`, `confint_wald`; names as lme4's oldNames = FALSE).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import CASES, REF
from lmmcli.inference.bootstrap import BootSample, bootstrap, norm_inter, percentile_intervals
from lmmcli.cli import app
from lmmcli.inference.confint import attach, confidence_intervals
from lmmcli.engine.crossprod import CrossProducts
from lmmcli.engine.pls import PlsModel
from lmmcli.inference.profile import Point, SdCorMap, invert, sdcor_of, var_params

SLEEP = str(REF / "data" / "sleepstudy.csv")
SLOPE = "Reaction ~ Days + (Days|Subject)"
runner = CliRunner()


def _same_group(a: str, b: str) -> bool:
    return sorted(a.split(":")) == sorted(b.split(":"))


def _lookup(bounds: dict, name: str):
    """Our interval for an lme4 name (group labels of nested terms may list their factors in another order)."""
    if name in bounds:
        return bounds[name]
    head, _, group = name.rpartition("|")
    return next(v for k, v in bounds.items() if k.rpartition("|")[0] == head and _same_group(k.rpartition("|")[2], group))


# -- profile intervals agree with lme4 -------------------------------------------------------------
# Tolerance: 1e-3 of the interval's width (we agree to ~1e-6; the reference checker allows 1%).
# pastes_nested has a profile that reaches sd = 0 before zeta does: its lower bound is 0 (as lme4).
PROFILE_CASES = [c["id"] for c in CASES if c["expected"].get("confint_profile")]
WALD_CASES = [c["id"] for c in CASES if c["expected"].get("confint_wald")]


@pytest.mark.parametrize("cid", PROFILE_CASES)
def test_profile_matches_lme4(fits, cases, cid):
    fm, case = fits[cid], cases[cid]
    ci = confidence_intervals(fm, "profile", 0.95)
    exp = case["expected"]["confint_profile"]
    assert ci.method == "profile" and ci.warnings == []
    for name, lo, hi in zip(exp["names"], exp["lower"], exp["upper"]):
        got = _lookup(ci.bounds, name)
        assert got == pytest.approx((lo, hi), abs=1e-3 * (hi - lo)), name
    assert len(ci.bounds) == len(exp["names"])


# -- Wald --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cid", WALD_CASES)
def test_wald_matches_lme4(fits, cases, cid):
    """Fixed effects: estimate -/+ 1.96 se to 1e-5 relative; variance parameters: none, as lme4's NA."""
    ci = confidence_intervals(fits[cid], "wald", 0.95)
    exp = cases[cid]["expected"]["confint_wald"]
    for name, lo, hi in zip(exp["names"], exp["lower"], exp["upper"]):
        if name.startswith("."):
            continue
        assert ci.bounds[name] == pytest.approx((lo, hi), rel=1e-5), name
    assert all(v == (None, None) for k, v in ci.bounds.items() if k == "sigma" or k.startswith(("sd_", "cor_")))


@pytest.mark.parametrize("level,width_ratio", [(0.90, 1.6448536 / 1.9599640), (0.99, 2.5758293 / 1.9599640)])
def test_wald_level_scales_the_width(fits, level, width_ratio):
    fm = fits["sleepstudy_slope"]
    w95 = np.diff(confidence_intervals(fm, "wald", 0.95).bounds["Days"])[0]
    w = np.diff(confidence_intervals(fm, "wald", level).bounds["Days"])[0]
    assert w / w95 == pytest.approx(width_ratio, rel=1e-6)


# -- pieces of the profiler --------------------------------------------------------------------------
@pytest.mark.parametrize("cid", ["sleepstudy_slope", "sleepstudy_uncorrelated", "pastes_nested"])
def test_sdcor_round_trip(fits, cid):
    """theta -> (sd, cor, sigma) -> theta is the identity: correlated, uncorrelated and nested terms."""
    fm = fits[cid]
    params = var_params(fm.blocks)
    par = sdcor_of(fm.blocks, params, fm.sol.theta, fm.sol.sigma)
    assert SdCorMap(fm.blocks, params).theta(par) == pytest.approx(fm.sol.theta, rel=1e-12, abs=1e-14)
    assert par[-1] == fm.sol.sigma


def test_sdcor_map_rejects_invalid_correlation(fits):
    fm = fits["sleepstudy_slope"]
    params = var_params(fm.blocks)
    par = sdcor_of(fm.blocks, params, fm.sol.theta, fm.sol.sigma)
    par[[p.kind for p in params].index("cor")] = 1.5
    assert SdCorMap(fm.blocks, params).theta(par) is None


def test_invert_gives_nan_where_profile_stops_short():
    """A profile that stops at a bound before zeta = -1.96 has no lower value (confint then uses the bound)."""
    pts = [Point(x, z, np.zeros(0)) for x, z in [(0.0, -1.2), (1.0, -0.5), (2.0, 0.0), (3.0, 0.8), (4.0, 2.5)]]
    warnings = []
    lo, hi = invert(pts, [-1.96, 1.96], "sd_x|g", warnings)
    assert np.isnan(lo) and 3.0 < hi < 4.0 and warnings == []


def test_invert_refuses_non_monotone_profile():
    pts = [Point(x, z, np.zeros(0)) for x, z in [(0.0, -2.5), (1.0, 0.0), (2.0, -0.5), (3.0, 2.5)]]
    warnings = []
    assert all(np.isnan(v) for v in invert(pts, [-1.96, 1.96], "b", warnings))
    assert "non-monotonic" in warnings[0]


# -- the CrossProducts constructors the profile and the bootstrap rely on ----------------------------------------
def test_with_response_equals_a_fresh_model(fits):
    fm = fits["penicillin_crossed"]       # crossed: exercises the dense "rest" part too
    m, X = fm.model, fm.design.X
    y2 = fm.design.y[::-1].copy()
    fresh = PlsModel.from_rows(X, y2, fm.blocks, reml=True)
    for theta in (fm.sol.theta, fm.sol.theta * 0.5 + 0.1):
        assert PlsModel(fm.cp.with_response(y2, X, fm.blocks)).objective(theta) == pytest.approx(fresh.objective(theta), rel=1e-12)
    assert m.objective(fm.sol.theta) == pytest.approx(fm.sol.objective, rel=1e-12)   # the original is untouched


def test_recombined_moves_a_column_into_the_offset(fits):
    fm = fits["gpa_cluster"]
    X, y, j, c = fm.design.X, fm.design.y, 2, 0.3
    M = np.zeros((X.shape[1] + 1, X.shape[1]))
    keep = [k for k in range(X.shape[1]) if k != j]
    M[keep, range(len(keep))] = 1.0
    M[-1, -1], M[j, -1] = 1.0, -c
    fresh = PlsModel.from_rows(np.delete(X, j, axis=1), y - c * X[:, j], fm.blocks, reml=False)
    ml = CrossProducts.from_rows(X, y, fm.blocks)
    assert PlsModel(ml.recombined(M), reml=False).objective(fm.sol.theta) == pytest.approx(fresh.objective(fm.sol.theta), rel=1e-12)


# -- bootstrap ---------------------------------------------------------------------------------------
def test_bootstrap_is_reproducible_and_independent_of_workers(fits):
    fm = fits["sleepstudy_slope"]
    calls = []
    a = bootstrap(fm, nsim=30, seed=7, workers=1, progress=lambda d, t: calls.append((d, t)))
    b = bootstrap(fm, nsim=30, seed=7, workers=2)
    c = bootstrap(fm, nsim=30, seed=8, workers=1)
    assert np.array_equal(a.estimates, b.estimates)
    assert not np.array_equal(a.estimates, c.estimates)
    assert calls[-1] == (30, 30) and a.failed == 0
    assert a.names[-2:] == ["(Intercept)", "Days"] and a.names[-3] == "sigma"
    ci = percentile_intervals(a, 0.95)
    assert ci["Days"][0] < fm.sol.beta[1] < ci["Days"][1]


@pytest.mark.parametrize("R,alpha,lo,hi", [
    (39, 0.025, 1.0, 1.0),          # (R+1) alpha = 1: the smallest replicate
    (999, 0.025, 25.0, 25.0),       # = 25: the 25th order statistic
    (999, 0.975, 975.0, 975.0),
    (1000, 0.025, 25.02, 25.03),    # 25.025: between the 25th and 26th, on the normal scale (not 25.975)
    (10, 0.025, 1.0, 1.0),          # beyond the extremes: the extreme order statistic
])
def test_norm_inter_is_boots_percentile(R, alpha, lo, hi):
    t = np.random.default_rng(0).permutation(np.arange(1.0, R + 1))      # t(k) = k
    assert lo <= norm_inter(t, alpha) <= hi


def test_failed_refits_are_counted_and_left_out():
    """A NaN row is a failed refit: counted, and left out (3 replicates, alpha 0.25: (R+1) alpha = 1, the
    smallest; 0.75: the largest)."""
    sample = BootSample(["a", "b"], np.array([[3.0, 10.0], [np.nan, np.nan], [1.0, 30.0], [2.0, 20.0]]))
    assert sample.failed == 1
    assert percentile_intervals(sample, 0.5) == {"a": (1.0, 3.0), "b": (10.0, 30.0)}


@pytest.mark.slow
def test_bootstrap_close_to_profile_for_sleepstudy(fits):
    """Issue 3's acceptance: nsim 1000, seed 1: each end within 10% of the profile interval's width
    for every fixed effect and for sigma."""
    fm = fits["sleepstudy_slope"]
    boot = confidence_intervals(fm, "boot", 0.95, nsim=1000, seed=1)
    prof = confidence_intervals(fm, "profile", 0.95)
    for name in ("(Intercept)", "Days", "sigma"):
        (lo, hi), (blo, bhi) = prof.bounds[name], boot.bounds[name]
        assert abs(blo - lo) <= 0.10 * (hi - lo) and abs(bhi - hi) <= 0.10 * (hi - lo), name
    assert boot.details == {"nsim": 1000, "seed": 1, "failed": 0}


# -- onto the result and the CLI -----------------------------------------------------------------------
def test_attach_fills_every_row(fits):
    fm = fits["sleepstudy_slope"]
    r = fm.result()
    attach(r, confidence_intervals(fm, "profile", 0.95))
    d = r.to_dict()
    assert d["ci_method"] == "profile" and d["ci_level"] == 0.95
    rows = d["fixed_effects"] + d["variance_components"] + d["correlations"]
    assert len(rows) == 6 and all(row["conf_low"] < row["conf_high"] for row in rows)


def _json(args):
    res = runner.invoke(app, ["fit", SLEEP, SLOPE, "-f", "json", *args])
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_cli_wald_json():
    d = _json(["--ci", "wald", "--level", "0.9"])
    assert d["ci_method"] == "wald" and d["ci_level"] == 0.9
    days = next(r for r in d["fixed_effects"] if r["term"] == "Days")
    assert days["conf_low"] < days["estimate"] < days["conf_high"]
    assert all(r["conf_low"] is None for r in d["variance_components"])


def test_cli_boot_same_seed_same_output():
    a, b = (_json(["--ci", "boot", "--nsim", "12", "--seed", "3"]) for _ in range(2))
    assert a["ci_bootstrap"] == {"nsim": 12, "seed": 3, "failed": 0}
    assert a["fixed_effects"] == b["fixed_effects"] and a["variance_components"] == b["variance_components"]


def test_cli_profile_table_has_interval_sections():
    res = runner.invoke(app, ["fit", SLEEP, SLOPE, "--ci", "profile"])
    assert res.exit_code == 0, res.stderr
    assert "95% confidence intervals: profile likelihood" in res.stdout
    assert "cor_Days.(Intercept)|Subject" in res.stdout and "sd lower" in res.stdout
    # lme4's lower profile bound of sd_(Intercept)|Subject is 14.3814 (confint_profile): shown once, in the
    # variance components, not again in the intervals table
    assert res.stdout.count("14.38") == 1


@pytest.mark.parametrize("args,needle", [
    (["--ci", "wald", "--level", "1.5"], "--level must be between 0 and 1"),
    (["--ci", "boot", "--nsim", "1"], "--nsim must be at least 2"),
])
def test_cli_bad_options(args, needle):
    res = runner.invoke(app, ["fit", SLEEP, SLOPE, *args])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and needle in res.stderr and res.stdout == ""


def test_cli_unknown_method_is_a_usage_error():
    res = runner.invoke(app, ["fit", SLEEP, SLOPE, "--ci", "bayes"])
    assert res.exit_code == 2 and res.stdout == ""


def test_cli_ci_without_random_terms_says_so():
    res = runner.invoke(app, ["fit", SLEEP, "Reaction ~ Days", "--ci", "profile"])
    assert res.exit_code == 0
    assert "note: --ci is for mixed models" in res.stderr and "conf" not in res.stdout


def test_intervals_reach_every_variance_row_of_a_double_bar_term(sleepstudy):
    """(Days || Subject): VarCorr names the second term's group Subject.1, its interval sd_Days|Subject."""
    from lmmcli.fit import fit
    from lmmcli.inference.summary import summarize

    r = summarize(fit("Reaction ~ Days + (Days||Subject)", sleepstudy), ci="boot", nsim=20, seed=1)
    assert [vc.group for vc in r.variance_components] == ["Subject", "Subject.1", "Residual"]
    assert all(vc.conf_low is not None and vc.conf_low < vc.sd < vc.conf_high for vc in r.variance_components)
