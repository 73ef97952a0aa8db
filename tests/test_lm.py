"""Tests for lmmcli.lm: a formula without random terms is R's lm(), reported as summary(lm()).

Reference numbers: issue 5 quotes summary(lm(gpa ~ occasion)) on tests/reference/data/gpa.csv
(the seed's starting model, M. Clark's "Mixed Models with R" notes): R^2 0.2136, residual SE 0.3487
(printed to 4 digits, so tolerance 5e-5). Everything else is checked against independent
closed forms (numpy least squares, the normal log-likelihood, R's definitions of R^2 and F).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app
from lmmcli.design.design import build_design
from lmmcli.errors import ModelSpecError
from lmmcli.formula import parse_formula
from lmmcli.lm import fit_lm

GPA = REF / "data" / "gpa.csv"
SLEEP = REF / "data" / "sleepstudy.csv"
runner = CliRunner()


def lm_of(text, df):
    f = parse_formula(text)
    return fit_lm(f, build_design(f, df))


@pytest.fixture(scope="module")
def gpa():
    return pd.read_csv(GPA)


# (key, R's printed value, tolerance): summary(lm(gpa ~ occasion)), quoted in issue 5
GPA_SUMMARY = [("r_squared", 0.2136, 5e-5), ("sigma", 0.3487, 5e-5)]


@pytest.mark.parametrize("key, value, tol", GPA_SUMMARY)
def test_gpa_occasion_matches_r_summary(gpa, key, value, tol):
    r = lm_of("gpa ~ occasion", gpa)
    assert getattr(r, key) == pytest.approx(value, abs=tol)


@pytest.mark.parametrize("text", ["gpa ~ occasion", "gpa ~ occasion + sex + highgpa", "gpa ~ job * sex",
                                  "gpa ~ 0 + occasion + sex", "gpa ~ 1"])
def test_against_closed_forms(gpa, text):
    """beta = lstsq, SE from sigma^2 (X'X)^-1, R^2 / F as R defines them, logLik by ML."""
    f = parse_formula(text)
    d = build_design(f, gpa)
    r = fit_lm(f, d)
    X, y = d.X, d.y
    n, p = X.shape
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    rss = float(np.sum((y - X @ beta) ** 2))
    sigma = np.sqrt(rss / (n - p))
    se = np.sqrt(np.diag(sigma ** 2 * np.linalg.inv(X.T @ X)))
    assert [fe.estimate for fe in r.fixed_effects] == pytest.approx(beta, rel=1e-9, abs=1e-12)
    assert [fe.std_error for fe in r.fixed_effects] == pytest.approx(se, rel=1e-9)
    t = beta / se
    assert [fe.p_value for fe in r.fixed_effects] == pytest.approx(2 * stats.t.sf(abs(t), n - p), rel=1e-6,
                                                                   abs=1e-300)
    tss = np.sum((y - y.mean()) ** 2) if f.intercept else np.sum(y ** 2)
    k = int(f.intercept)
    if p - k > 0:
        assert r.r_squared == pytest.approx(1 - rss / tss, rel=1e-10)
        assert r.adj_r_squared == pytest.approx(1 - (1 - r.r_squared) * (n - k) / (n - p), rel=1e-10)
    else:   # R's summary.lm sets both to exactly 0 for an intercept-only model
        assert (r.r_squared, r.adj_r_squared) == (0.0, 0.0)
    assert r.loglik == pytest.approx(stats.norm.logpdf(y, X @ beta, np.sqrt(rss / n)).sum(), rel=1e-10)
    assert r.aic == pytest.approx(-2 * r.loglik + 2 * (p + 1))
    assert r.bic == pytest.approx(-2 * r.loglik + np.log(n) * (p + 1))
    if p - k > 0:
        F = ((tss - rss) / (p - k)) / (rss / (n - p))
        assert r.f_statistic == pytest.approx(F, rel=1e-9)
        assert (r.f_df1, r.f_df2) == (p - k, n - p)
        assert r.f_p_value == pytest.approx(stats.f.sf(F, p - k, n - p), rel=1e-6, abs=1e-300)
    else:
        assert r.f_statistic is None and r.f_p_value is None


def test_single_predictor_f_is_t_squared(gpa):
    r = lm_of("gpa ~ occasion", gpa)
    assert r.f_statistic == pytest.approx(r.fixed_effects[1].statistic ** 2, rel=1e-10)


def test_residual_quantiles_are_raw_residuals(gpa):
    r = lm_of("gpa ~ occasion", gpa)
    res = gpa["gpa"] - (r.fixed_effects[0].estimate + r.fixed_effects[1].estimate * gpa["occasion"])
    assert r.residuals["min"] == pytest.approx(res.min())
    assert r.residuals["median"] == pytest.approx(res.median())


def test_no_residual_df_is_a_model_error():
    df = pd.DataFrame({"y": [1.0, 2.0], "x": [0.0, 1.0]})
    with pytest.raises(ModelSpecError, match="no residual degrees of freedom"):
        lm_of("y ~ x", df)


def test_missing_rows_counted(gpa):
    df = gpa.copy()
    df.loc[:4, "occasion"] = np.nan
    r = lm_of("gpa ~ occasion", df)
    assert (r.nobs, r.n_dropped) == (1195, 5)


# -- the CLI routes a formula without random terms here ------------------------------------------
def test_cli_table_is_summary_lm():
    res = runner.invoke(app, ["fit", str(GPA), "gpa ~ occasion"])
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    for piece in ("no random-effects term was given", "ordinary linear regression", "Coefficients",
                  "Pr(>|t|)", "Residual standard error: 0.3487 on 1198 degrees of freedom",
                  "Multiple R-squared: 0.2136", "F-statistic: 325.3 on 1 and 1198 DF"):
        assert piece in out
    assert "Random effects" not in out and "REML" not in out
    assert res.stderr == ""


def test_cli_json_keys():
    res = runner.invoke(app, ["fit", str(GPA), "gpa ~ occasion", "--format", "json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["model"] == "lm"
    for key in ("sigma", "r_squared", "adj_r_squared", "f_statistic", "f_df1", "f_df2", "f_p_value",
                "loglik", "aic", "bic", "df_resid"):
        assert doc[key] is not None, key
    assert doc["r_squared"] == pytest.approx(0.2136, abs=5e-5)
    assert all("p_value" in fe for fe in doc["fixed_effects"])


def test_cli_mixed_formula_still_lmer():
    res = runner.invoke(app, ["fit", str(SLEEP), "Reaction ~ Days + (1|Subject)", "--format", "json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout).get("model") != "lm"
