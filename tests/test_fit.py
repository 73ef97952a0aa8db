"""Golden tests: every reference case agrees with lme4 1.1-31 (tests/reference/expected/*.json).

Tolerances are those of ../shared/tools/check_reference.py: objective no worse than lme4's by 1e-4,
fixed effects 1e-4 relative, standard errors and sds 2e-3 relative.
"""

from __future__ import annotations

import re as regex

import numpy as np
import pytest

from conftest import CASE_IDS, CASES


def _case(cid):
    return next(c for c in CASES if c["id"] == cid)


@pytest.mark.parametrize("cid", CASE_IDS)
def test_objective_not_worse_than_lme4(fits, cid):
    exp, r = _case(cid)["expected"], fits[cid].result()
    if exp["reml"]:
        assert r.reml_criterion <= exp["reml_criterion"] + 1e-4
        assert r.reml_criterion == pytest.approx(exp["reml_criterion"], abs=1e-2)
    else:
        assert r.deviance <= exp["deviance"] + 1e-4
        assert r.deviance == pytest.approx(exp["deviance"], abs=1e-2)


@pytest.mark.parametrize("cid", CASE_IDS)
def test_fixed_effects(fits, cid):
    exp, r = _case(cid)["expected"], fits[cid].result()
    assert r.fixed_names == exp["fixef"]["terms"]
    got = np.array([fe.estimate for fe in r.fixed_effects])
    se = np.array([fe.std_error for fe in r.fixed_effects])
    np.testing.assert_allclose(got, exp["fixef"]["estimate"], rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(se, exp["fixef"]["se"], rtol=2e-3)
    np.testing.assert_allclose(np.array(r.vcov), np.array(exp["vcov"], dtype=float).reshape(len(got), -1),
                               rtol=5e-3, atol=1e-6 * np.max(np.abs(exp["vcov"])))


@pytest.mark.parametrize("cid", CASE_IDS)
def test_variance_components(fits, cid):
    exp, r = _case(cid)["expected"], fits[cid].result()
    assert r.sigma == pytest.approx(exp["sigma"], rel=2e-3)
    sds = {(vc.group, vc.term): vc.sd for vc in r.variance_components}
    for grp in exp["varcorr"]:
        terms = grp["terms"] if isinstance(grp["terms"], list) else [grp["terms"]]
        sd = grp["sd"] if isinstance(grp["sd"], list) else [grp["sd"]]
        for t, s in zip(terms, sd):   # lme4's names: the second term on Subject is "Subject.1"
            assert sds[(grp["group"], t)] == pytest.approx(s, rel=2e-3, abs=1e-4 * exp["sigma"])
    assert r.variance_components[-1].group == "Residual"


@pytest.mark.parametrize("cid", CASE_IDS)
def test_summary_numbers(fits, cid):
    exp, r = _case(cid)["expected"], fits[cid].result()
    assert r.nobs == exp["nobs"]
    assert r.npar == exp["npar"]
    assert r.singular == exp["is_singular"]
    assert r.converged
    assert r.loglik == pytest.approx(exp["loglik"], abs=1e-3)
    assert r.aic == pytest.approx(exp["AIC"], abs=1e-3)
    assert r.bic == pytest.approx(exp["BIC"], abs=1e-3)
    q = [r.scaled_residuals[k] for k in ("min", "q1", "median", "q3", "max")]
    np.testing.assert_allclose(q, exp["scaled_resid_quantiles"], rtol=5e-3, atol=1e-3)
    assert r.ngroups == {k.split(".")[0]: v for k, v in exp["ngrps"].items()}


def _factor_name(varcorr_group: str) -> str:
    return regex.sub(r"\.[0-9]+$", "", varcorr_group)


@pytest.mark.parametrize("cid", CASE_IDS)
def test_random_effects_and_conditional_sds(fits, cid):
    exp, r = _case(cid)["expected"], fits[cid].result()
    ref = exp["ranef"]
    got = {(re.group, re.term, re.level): (re.estimate, re.std_error) for re in r.random_effects}
    assert len(got) == len(ref["condval"])
    # ranef names the grouping factor (Subject), VarCorr its terms (Subject, Subject.1)
    sd_of = {(_factor_name(vc.group), vc.term): vc.sd for vc in r.variance_components}
    for g, t, lev, val, sd in zip(ref["grpvar"], ref["term"], ref["grp"], ref["condval"], ref["condsd"]):
        mine = got[(g, t, str(lev))]
        scale = max(sd_of[(g, t)], 1e-8 * exp["sigma"])
        assert abs(mine[0] - val) <= 2e-3 * scale + 1e-6 * exp["sigma"]
        assert mine[1] == pytest.approx(sd, rel=2e-3, abs=1e-6 * exp["sigma"])


@pytest.mark.parametrize("cid", ["sleepstudy_slope", "pastes_nested", "penicillin_crossed"])
def test_fitted_values(fits, cid):
    exp = _case(cid)["expected"]
    np.testing.assert_allclose(fits[cid].fitted(), exp["fitted"], rtol=1e-4)


def test_theta_layout_matches_lme4(fits):
    """theta is the lower triangle of T column by column, largest grouping factor first."""
    for cid in ("sleepstudy_slope", "penicillin_crossed", "pastes_nested"):
        exp = _case(cid)["expected"]
        np.testing.assert_allclose(fits[cid].result().theta, exp["theta"], rtol=2e-3, atol=2e-4)


def test_correlation_of_random_slope(fits):
    r = fits["sleepstudy_slope"].result()
    (c,) = r.correlations
    assert (c.group, c.term1, c.term2) == ("Subject", "(Intercept)", "Days")
    assert c.correlation == pytest.approx(0.0655512382381282, abs=2e-3)


def test_uncorrelated_has_no_correlation(fits):
    assert fits["sleepstudy_uncorrelated"].result().correlations == []


def test_singular_fit_is_reported(fits):
    r = fits["dyestuff2_singular"].result()
    assert r.singular and any("singular" in w for w in r.warnings)


def test_json_document_is_complete(fits):
    d = fits["sleepstudy_slope"].result().to_dict()
    for key in ("schema_version", "formula", "method", "nobs", "ngroups", "reml_criterion", "deviance",
                "loglik", "aic", "bic", "npar", "sigma", "theta", "converged", "singular", "warnings",
                "fixed_effects", "vcov", "variance_components", "correlations", "random_effects",
                "scaled_residuals"):
        assert key in d
    assert d["variance_components"][-1]["group"] == "Residual"
    assert set(d["fixed_effects"][0]) >= {"term", "estimate", "std_error", "statistic"}


# -- analyze: the library, not the CLI, decides lmer or lm -----------------------------------------
def test_analyze_reports_lm_without_random_terms_and_lmer_with(sleepstudy):
    from lmmcli.fit import analyze, fit
    from lmmcli.lm import LmResult
    from lmmcli.results import FitResult

    plain = analyze(fit("Reaction ~ Days", sleepstudy), ci="wald")
    assert isinstance(plain.report, LmResult) and not plain.mixed
    assert plain.notes and plain.notes[0].startswith("--ci is for mixed models")
    mixed = analyze(fit("Reaction ~ Days + (1|Subject)", sleepstudy))
    assert isinstance(mixed.report, FitResult) and mixed.mixed and mixed.notes == []
    assert mixed.report.to_dict()["df_method"] == "satterthwaite"
