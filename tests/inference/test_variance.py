"""Variance shares, ICC and Nakagawa's R^2 (lmmcli.inference.variance).

The expected values are computed in the test from lme4's own estimates (tests/reference/expected/*.json:
`varcorr`, `sigma`, `fixef`) and the data, with performance's definitions (insight::get_variance):
var_fixed = var(X beta) (n - 1), var_random = mean over rows of z' Sigma z per term, var_residual = sigma^2.
Tolerance 5e-3 relative: lme4's sds agree with ours to 2e-3, variances are their squares.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REF, read_case_data
from lmmcli.cli import app
from lmmcli.results import VarianceComponent
from lmmcli.inference.variance import VarianceDecomposition, decompose, with_shares, with_variance_summary

runner = CliRunner()
GPA = str(REF / "data" / "gpa.csv")


def _listed(x):
    return x if isinstance(x, list) else [x]


def _lme4_covariances(exp):
    """(terms, Sigma) per random term from lme4's varcorr (sd and correlation matrix)."""
    out = []
    for grp in exp["varcorr"]:
        terms, sd = _listed(grp["terms"]), np.array(_listed(grp["sd"]), dtype=float)
        R = np.array(grp["corr"], dtype=float).reshape(len(sd), len(sd)) if len(sd) > 1 and grp.get("corr") else \
            np.eye(len(sd))
        out.append((terms, np.outer(sd, sd) * R))
    return out


def _columns(df, term):
    return np.ones(len(df)) if term == "(Intercept)" else df[term].to_numpy(dtype=float)


def _lme4_decomposition(case, fm):
    """The three variances from lme4's estimates; X beta with lme4's fixef on our X (same columns)."""
    exp, df = case["expected"], read_case_data(case)
    var_fixed = float(np.var(fm.design.X @ np.array(exp["fixef"]["estimate"]), ddof=1)) if fm.design.X.shape[1] else 0.0
    var_random = 0.0
    for terms, S in _lme4_covariances(exp):
        Z = np.column_stack([_columns(df, t) for t in terms])
        var_random += float(np.mean(np.einsum("ij,jk,ik->i", Z, S, Z)))
    return VarianceDecomposition(var_fixed, var_random, exp["sigma"] ** 2)


DECOMP_CASES = ["sleepstudy_intercept", "sleepstudy_slope", "sleepstudy_uncorrelated", "gpa_intercept",
                "gpa_cluster", "gpa_slope", "gpa_job", "dyestuff", "penicillin_crossed", "pastes_nested",
                "simulated_intercepts"]


@pytest.mark.parametrize("cid", DECOMP_CASES)
def test_icc_and_r2_from_lme4s_estimates(fits, cases, cid):
    want = _lme4_decomposition(cases[cid], fits[cid])
    got = decompose(fits[cid])
    for a, b in [(got.icc(), want.icc()), (got.r2(), want.r2())]:
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=5e-3, abs=1e-9), key


def test_gpa_student_share_is_0_523(fits):
    """The issue's number: gpa ~ occasion + (1|student), student's share of the variance 0.523."""
    r = with_variance_summary(fits["gpa_intercept"], fits["gpa_intercept"].result())
    student = next(vc for vc in r.variance_components if vc.group == "student")
    assert round(student.share, 3) == 0.523
    assert r.extra["icc"]["adjusted"] == pytest.approx(student.share, rel=1e-12)   # one term: the same thing


@pytest.mark.parametrize("cid", ["sleepstudy_intercept", "gpa_cluster", "penicillin_crossed", "pastes_nested"])
def test_random_intercepts_identities(fits, cid):
    """Intercepts only: var_random is the sum of variances, and R2c - R2m is the unadjusted ICC."""
    d = decompose(fits[cid])
    vcs = fits[cid].result().variance_components
    assert d.var_random == pytest.approx(sum(vc.variance for vc in vcs if vc.group != "Residual"), rel=1e-12)
    r2 = d.r2()
    assert r2["r2_conditional"] - r2["r2_marginal"] == pytest.approx(d.icc()["unadjusted"], rel=1e-12)


def test_singular_fit_has_zero_random_share(fits):
    d = decompose(fits["dyestuff2_singular"])
    assert d.icc()["adjusted"] == pytest.approx(0.0, abs=1e-8)
    assert d.r2()["r2_marginal"] == pytest.approx(0.0, abs=1e-12)   # intercept only: X beta is constant


@pytest.mark.parametrize("variances, shares", [
    ([1.0, 3.0], [0.25, 0.75]),
    ([0.0, 2.0, 2.0], [0.0, 0.5, 0.5]),
    ([0.0, 0.0], [None, None]),
])
def test_shares(variances, shares):
    rows = [VarianceComponent("g", "t", v, np.sqrt(v)) for v in variances]
    assert [vc.share for vc in with_shares(rows)] == shares


def test_json_keys(fits):
    fm = fits["sleepstudy_slope"]
    doc = with_variance_summary(fm, fm.result()).to_dict()
    assert set(doc["icc"]) == {"adjusted", "unadjusted"}
    assert 0 < doc["r2_marginal"] < doc["r2_conditional"] < 1
    assert sum(vc["share"] for vc in doc["variance_components"]) == pytest.approx(1.0)


def test_cli_table_and_json_show_the_summary():
    res = runner.invoke(app, ["fit", GPA, "gpa ~ occasion + (1|student)"])
    assert res.exit_code == 0, res.stderr
    assert "Variance components" in res.stdout and "0.523" in res.stdout and "ICC adjusted" in res.stdout
    res = runner.invoke(app, ["fit", GPA, "gpa ~ occasion + (1|student)", "--format", "json"])
    doc = json.loads(res.stdout)
    assert round(doc["icc"]["adjusted"], 3) == 0.523 and "r2_marginal" in doc and "r2_conditional" in doc
